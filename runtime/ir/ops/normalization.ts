import { defineOps } from './schema.js';

// Shape/dtype inference for the normalization family (owned by the math work stream).
export const schemas = defineOps();
