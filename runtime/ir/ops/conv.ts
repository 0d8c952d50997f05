import { defineOps } from './schema.js';

// Shape/dtype inference for the conv family (owned by the math work stream).
export const schemas = defineOps();
