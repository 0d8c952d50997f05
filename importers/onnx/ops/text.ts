import type { OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';

/** The text ops: one version each up to opset 21 (StringConcat, StringSplit, RegexFullMatch from 20), the IR form. */
export const TEXT_ADAPTERS: OpAdapter[] = [
  { op: 'StringNormalizer', since: 10, until: MAX_OPSET },
  { op: 'TfIdfVectorizer', since: 9, until: MAX_OPSET },
  { op: 'StringConcat', since: 20, until: MAX_OPSET },
  { op: 'StringSplit', since: 20, until: MAX_OPSET },
  { op: 'RegexFullMatch', since: 20, until: MAX_OPSET },
];
