import type { OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';

/** StringNormalizer-10 and TfIdfVectorizer-9: one version each up to opset 21, already the IR form. */
export const TEXT_ADAPTERS: OpAdapter[] = [
  { op: 'StringNormalizer', since: 10, until: MAX_OPSET },
  { op: 'TfIdfVectorizer', since: 9, until: MAX_OPSET },
];
