import { defineOps } from './schema.js';

// Shape/dtype inference for the elementwise family (owned by the math work stream).
export const schemas = defineOps();
