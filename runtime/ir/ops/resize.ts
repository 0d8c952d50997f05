import { defineOps } from './schema.js';

// Shape/dtype inference for the resize family (owned by the data-movement work stream).
export const schemas = defineOps();
