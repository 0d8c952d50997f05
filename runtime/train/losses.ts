import { InvalidArgumentError } from '../errors.js';
import type { DType } from '../ir/dtype.js';
import type { Attr, Dim, Graph, Node } from '../ir/graph.js';
import { validateAndSort } from '../ir/validate.js';
import { inferTrainShapes } from './infer.js';
import { TRAIN_DOMAIN } from './ops/common.js';

/**
 * Attaching a loss to a tail: a new graph with a `target` input and a scalar `loss` output (placed first, the
 * model's outputs kept after it so predictions come out of the same run).
 *
 * - cross-entropy: the CrossEntropyLoss op (ops/losses.ts) on logits [N, C, ...]; targets are class indices
 *   (int64 [N, ...], the default) or probabilities (float [N, C, ...]); label smoothing and ignore_index as
 *   torch.nn.CrossEntropyLoss.
 * - bce-with-logits: the BCEWithLogitsLoss op; targets have the logits' shape.
 * - mse: an IR subgraph, mean((y - t)^2) (Sub, Mul, ReduceMean or ReduceSum), whose gradient comes from the
 *   ordinary rules: a plain composition needs no dedicated op.
 */
export type LossSpec =
  | { kind: 'cross-entropy'; labelSmoothing?: number; targets?: 'indices' | 'probabilities'; ignoreIndex?: number }
  | { kind: 'bce-with-logits' }
  | { kind: 'mse' };

export interface LossOptions {
  /** The model output the loss reads (default: the first output). */
  output?: string;
  reduction?: 'mean' | 'sum';
  targetName?: string;
  lossName?: string;
}

export interface LossGraph {
  graph: Graph;
  loss: string;
  target: string;
}

function freshName(g: Graph, base: string): string {
  const used = new Set<string>([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers), ...g.nodes.flatMap((n) => n.outputs)]);
  let name = base;
  for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
  return name;
}

export function attachLoss(tail: Graph, spec: LossSpec, opts: LossOptions = {}): LossGraph {
  const g = tail.values && Object.keys(tail.values).length ? tail : inferTrainShapes(validateAndSort(tail));
  const output = opts.output ?? g.outputs[0]?.name;
  if (!output) throw new InvalidArgumentError('The graph has no output to attach a loss to.');
  const info = g.values[output];
  if (!info?.shape) throw new InvalidArgumentError(`The loss needs the rank of output '${output}', which is unknown.`);
  const reduction = opts.reduction ?? 'mean';
  const target = opts.targetName ?? freshName(g, 'target');
  const loss = opts.lossName ?? freshName(g, 'loss');
  const str = (value: string): Attr => ({ type: 'string', value });
  let targetType: DType = info.dtype;
  let targetShape: Dim[] = [...info.shape];
  const nodes: Node[] = [];
  switch (spec.kind) {
    case 'cross-entropy': {
      if (info.shape.length < 2) throw new InvalidArgumentError(`Cross-entropy needs logits [N, C, ...]; output '${output}' has shape [${info.shape.join(', ')}].`);
      if ((spec.targets ?? 'indices') === 'indices') {
        targetType = 'int64';
        targetShape = [info.shape[0]!, ...info.shape.slice(2)];
      }
      const attrs: Record<string, Attr> = {
        reduction: str(reduction),
        label_smoothing: { type: 'float', value: spec.labelSmoothing ?? 0 },
        ignore_index: { type: 'int', value: spec.ignoreIndex ?? -100 },
      };
      nodes.push({ name: `${loss}_cross_entropy`, op: 'CrossEntropyLoss', domain: TRAIN_DOMAIN, inputs: [output, target], outputs: [loss], attrs });
      break;
    }
    case 'bce-with-logits':
      nodes.push({ name: `${loss}_bce`, op: 'BCEWithLogitsLoss', domain: TRAIN_DOMAIN, inputs: [output, target], outputs: [loss], attrs: { reduction: str(reduction) } });
      break;
    case 'mse': {
      const diff = `${loss}_diff`;
      const sq = `${loss}_sq`;
      nodes.push(
        { name: `${loss}_sub`, op: 'Sub', domain: '', inputs: [output, target], outputs: [diff], attrs: {} },
        { name: `${loss}_square`, op: 'Mul', domain: '', inputs: [diff, diff], outputs: [sq], attrs: {} },
        { name: `${loss}_reduce`, op: reduction === 'mean' ? 'ReduceMean' : 'ReduceSum', domain: '', inputs: [sq], outputs: [loss], attrs: { keepdims: { type: 'int', value: 0 } } },
      );
      break;
    }
  }
  const graph: Graph = {
    ...g,
    name: `${g.name}_loss`,
    initializers: { ...g.initializers },
    inputs: [...g.inputs, { name: target, dtype: targetType, shape: targetShape }],
    outputs: [{ name: loss, dtype: info.dtype, shape: [] }, ...g.outputs],
    nodes: [...g.nodes, ...nodes],
  };
  return { graph: inferTrainShapes(validateAndSort(graph)), loss, target };
}
