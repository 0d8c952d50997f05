import { DTypeError, InvalidArgumentError, InvalidGraphError, ShapeError } from '../../errors.js';
import { attrFloat, attrString, type Dim, type Node } from '../graph.js';
import { dimsConflict } from './math-types.js';
import { defineOps, type InferredOutput, type OpSchema } from './schema.js';

/**
 * The optimizer ops of ONNX's 'ai.onnx.preview.training' domain (version 1): Adagrad, Momentum and Adam. The IR
 * names say the domain ('ai.onnx.preview.training.Adam'): the importer rewrites the file's node into the default
 * IR domain under that name. Each node updates n tensors at once; its inputs are
 *   R (learning rate, float scalar), T (update count, int64 scalar), X_1..X_n, G_1..G_n, then k state groups
 *   (Adagrad: H; Momentum: V; Adam: V, H), each n tensors shaped like the X they belong to,
 * and its outputs X_new_1..X_new_n followed by the new states in the same group order.
 */

export const PREVIEW_TRAINING = 'ai.onnx.preview.training';

export type OptimizerKind = 'Adagrad' | 'Momentum' | 'Adam';

/** IR op name of an optimizer. */
export const optimizerOp = (kind: OptimizerKind): string => `${PREVIEW_TRAINING}.${kind}`;

/** State groups per optimizer (the tensors besides X and G each parameter carries). */
export const STATE_GROUPS: Readonly<Record<OptimizerKind, number>> = { Adagrad: 1, Momentum: 1, Adam: 2 };

export function optimizerKind(node: Node): OptimizerKind {
  const kind = node.op.slice(PREVIEW_TRAINING.length + 1) as OptimizerKind;
  if (!(kind in STATE_GROUPS)) throw new InvalidArgumentError(`${node.op} is not a preview.training optimizer.`);
  return kind;
}

/** How many tensors one node updates (n), from its input count. */
export function parameterCount(node: Node): number {
  const groups = 2 + STATE_GROUPS[optimizerKind(node)];
  const n = (node.inputs.length - 2) / groups;
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidGraphError(`${node.op} node '${node.name}' has ${node.inputs.length} inputs; it takes R, T and ${groups} groups of n tensors (X, G, states).`, { node: node.name });
  }
  if (node.outputs.length !== (groups - 1) * n) {
    throw new InvalidGraphError(`${node.op} node '${node.name}' updates ${n} tensor(s), so it has ${(groups - 1) * n} outputs, not ${node.outputs.length}.`, { node: node.name });
  }
  return n;
}

/** Every attribute of the three optimizers, with the spec's defaults (Momentum's are required by the spec). */
export interface OptimizerParams {
  kind: OptimizerKind;
  /** Adagrad */
  decayFactor: number;
  /** Adagrad, Adam */
  epsilon: number;
  /** L2 coefficient added to the gradient (all three). */
  normCoefficient: number;
  /** Adam: weight decay applied after the update. */
  normCoefficientPost: number;
  /** Momentum: decay of the old velocity; Adam: decay of the first moment. */
  alpha: number;
  /** Momentum: gradient scale (used from T > 0 on); Adam: decay of the second moment. */
  beta: number;
  nesterov: boolean;
}

export function optimizerParams(node: Node): OptimizerParams {
  const kind = optimizerKind(node);
  const required = (name: string): number => {
    const v = attrFloat(node, name);
    if (v === undefined) throw new InvalidArgumentError(`${node.op} needs the '${name}' attribute.`);
    return v;
  };
  const mode = kind === 'Momentum' ? attrString(node, 'mode', '') : 'standard';
  if (mode !== 'standard' && mode !== 'nesterov') throw new InvalidArgumentError(`${node.op} mode must be 'standard' or 'nesterov', got '${mode}'.`);
  return {
    kind,
    decayFactor: attrFloat(node, 'decay_factor', 0),
    // Adagrad and Adam default epsilon to 1e-6 (ONNX defs); Momentum has none.
    epsilon: attrFloat(node, 'epsilon', 1e-6),
    normCoefficient: kind === 'Momentum' ? required('norm_coefficient') : attrFloat(node, 'norm_coefficient', 0),
    normCoefficientPost: attrFloat(node, 'norm_coefficient_post', 0),
    alpha: kind === 'Momentum' ? required('alpha') : attrFloat(node, 'alpha', 0.9),
    beta: kind === 'Momentum' ? required('beta') : attrFloat(node, 'beta', 0.999),
    nesterov: mode === 'nesterov',
  };
}

function optimizer(kind: OptimizerKind): OpSchema {
  const groups = 2 + STATE_GROUPS[kind];
  return {
    op: optimizerOp(kind),
    inputs: [2 + groups, Infinity],
    outputs: [groups - 1, Infinity],
    infer(ctx) {
      const node = ctx.node;
      const n = parameterCount(node);
      optimizerParams(node);
      const [r, t] = ctx.inputs;
      if (!r || !t) throw new InvalidArgumentError(`${node.op} needs R and T.`);
      if (r.dtype !== 'float32' && r.dtype !== 'float64') throw new DTypeError(`${node.op} R must be float or double, got ${r.dtype}.`, { dtype: r.dtype });
      if (t.dtype !== 'int64') throw new DTypeError(`${node.op} T must be int64, got ${t.dtype}.`, { dtype: t.dtype });
      for (const [v, what] of [[r, 'R'], [t, 'T']] as const) {
        if (v.shape && v.shape.length !== 0) throw new ShapeError(`${node.op} ${what} must be a scalar, got shape [${v.shape.join(', ')}].`);
      }
      const out: InferredOutput[] = new Array(node.outputs.length);
      for (let i = 0; i < n; i++) {
        const x = ctx.inputs[2 + i];
        if (!x) throw new InvalidArgumentError(`${node.op} input X_${i + 1} is required but missing.`);
        if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new DTypeError(`${node.op} X_${i + 1} must be float or double, got ${x.dtype}.`, { dtype: x.dtype });
        let shape: Dim[] | undefined = x.shape;
        for (let g = 1; g < groups; g++) {
          const s = ctx.inputs[2 + g * n + i];
          const what = g === 1 ? `G_${i + 1}` : `state ${g - 1} of X_${i + 1}`;
          if (!s) throw new InvalidArgumentError(`${node.op} input ${what} is required but missing.`);
          if (s.dtype !== x.dtype) throw new DTypeError(`${node.op} ${what} is ${s.dtype} but X_${i + 1} is ${x.dtype}.`, { dtype: s.dtype });
          if (shape && s.shape && (shape.length !== s.shape.length || shape.some((d, k) => dimsConflict(d, s.shape![k]!)))) {
            throw new ShapeError(`${node.op} ${what} has shape [${s.shape.join(', ')}] but X_${i + 1} has [${shape.join(', ')}].`);
          }
          shape ??= s.shape;
        }
        for (let g = 0; g < groups - 1; g++) out[g * n + i] = { dtype: x.dtype, shape: shape && [...shape] };
      }
      return out;
    },
  };
}

export const schemas = defineOps(optimizer('Adagrad'), optimizer('Momentum'), optimizer('Adam'));
