import type { Node } from '../../../runtime/ir/graph.js';
import type { OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { without } from './helpers.js';

/**
 * RNN, GRU and LSTM. Versions 7..21 are the IR form (RNN/GRU/LSTM-22, ONNX operator spec): 14 only added `layout`
 * (default 0, the 7..13 behaviour) and 22 only types. Versions 1..6 (GRU-3 added linear_before_reset, default 0) also
 * had `output_sequence`, which only said whether Y may be omitted; outputs are optional by name from 7 on, so the
 * attribute is dropped.
 */
function dropOutputSequence(n: Node): Node[] {
  return [{ ...n, attrs: without(n, 'output_sequence') }];
}

export const RNN_ADAPTERS: OpAdapter[] = ['RNN', 'GRU', 'LSTM'].flatMap((op): OpAdapter[] => [
  { op, since: 1, until: 6, map: dropOutputSequence, sameForm: true },
  { op, since: 7, until: MAX_OPSET },
]);
