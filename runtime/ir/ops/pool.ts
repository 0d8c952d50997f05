import { defineOps } from './schema.js';

// Shape/dtype inference for the pool family (owned by the math work stream).
export const schemas = defineOps();
