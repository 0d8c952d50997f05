import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrFloat, attrFloats, attrInt, attrString, type Dim, type Node } from '../graph.js';
import { checkDType, checkSameDType, dimsConflict, requireInput } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Recurrent layers RNN-22, GRU-22 and LSTM-22 (ONNX operator spec; the importer rewrites 1..21 into this form).
 * Inputs: X, W, R, B, sequence_lens, initial_h (and initial_c, P for LSTM); outputs Y, Y_h (and Y_c). Shapes with
 * layout 0 (D = num_directions, G = gates: RNN 1, GRU 3, LSTM 4):
 *   X [T, B, I], W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], sequence_lens [B], initial_h/initial_c [D, B, H],
 *   P [D, 3*H]; Y [T, D, B, H], Y_h/Y_c [D, B, H].
 * layout 1 puts the batch first: X [B, T, I], Y [B, T, D, H], initial_h/Y_h/Y_c [B, D, H].
 * The attribute parsing below (rnnConfig) is shared by the CPU and WebGPU kernels, so both read one set of rules.
 */

export type RnnOp = 'RNN' | 'GRU' | 'LSTM';
export type Direction = 'forward' | 'reverse' | 'bidirectional';

/** The activation functions of the spec's list; names are matched case-insensitively, as onnxruntime does. */
export const RNN_ACTIVATIONS = [
  'Relu', 'Tanh', 'Sigmoid', 'Affine', 'LeakyRelu', 'ThresholdedRelu', 'ScaledTanh', 'HardSigmoid', 'Elu', 'Softsign', 'Softplus',
] as const;
export type RnnActivationName = (typeof RNN_ACTIVATIONS)[number];

export interface RnnActivation {
  name: RnnActivationName;
  alpha: number;
  beta: number;
}

/**
 * Which activations take alpha/beta, and their defaults ("the same as of corresponding ONNX operators": LeakyRelu
 * 0.01, ThresholdedRelu 1, HardSigmoid 0.2/0.5, Elu 1, and the experimental Affine 1/0 and ScaledTanh 1/1).
 * activation_alpha and activation_beta are consumed in the order of the activation list, each only by functions
 * that take that parameter (onnxruntime's reading of the spec).
 */
const PARAMS: Partial<Record<RnnActivationName, { alpha?: number; beta?: number }>> = {
  Affine: { alpha: 1, beta: 0 },
  LeakyRelu: { alpha: 0.01 },
  ThresholdedRelu: { alpha: 1 },
  ScaledTanh: { alpha: 1, beta: 1 },
  HardSigmoid: { alpha: 0.2, beta: 0.5 },
  Elu: { alpha: 1 },
};

export const RNN_GATES: Readonly<Record<RnnOp, number>> = { RNN: 1, GRU: 3, LSTM: 4 };
/** Activations per direction: RNN f; GRU f (gates), g (candidate); LSTM f (gates), g (cell input), h (output). */
const ACTIVATIONS_PER_DIRECTION: Readonly<Record<RnnOp, number>> = { RNN: 1, GRU: 2, LSTM: 3 };
const DEFAULT_ACTIVATIONS: Readonly<Record<RnnOp, RnnActivationName[]>> = {
  RNN: ['Tanh', 'Tanh'], // RNN-7+ default is Tanh for both directions
  GRU: ['Sigmoid', 'Tanh'],
  LSTM: ['Sigmoid', 'Tanh', 'Tanh'],
};

export interface RnnConfig {
  op: RnnOp;
  direction: Direction;
  /** Number of directions: 1, or 2 when bidirectional. */
  numDirections: number;
  /** Gates per step (RNN 1, GRU 3, LSTM 4). */
  gates: number;
  /** hidden_size, when the attribute is present. */
  hiddenSize?: number;
  layout: 0 | 1;
  /** Clip threshold of the gate pre-activations ([-clip, clip]); undefined: no clipping. */
  clip?: number;
  /** GRU: apply the reset gate after multiplying by R (true) or before (false, the default). */
  linearBeforeReset: boolean;
  /** LSTM: couple the input and forget gates (f = 1 - i, as onnxruntime does). */
  inputForget: boolean;
  /** Activations per direction: activations[d] has 1 (RNN), 2 (GRU) or 3 (LSTM) entries. */
  activations: RnnActivation[][];
}

function activationName(op: string, s: string): RnnActivationName {
  const hit = RNN_ACTIVATIONS.find((a) => a.toLowerCase() === s.toLowerCase());
  if (!hit) throw new InvalidArgumentError(`${op} activation '${s}' is not one of ${RNN_ACTIVATIONS.join(', ')}.`);
  return hit;
}

/** Reads and checks a recurrent node's attributes. */
export function rnnConfig(node: Node): RnnConfig {
  const op = node.op as RnnOp;
  const direction = attrString(node, 'direction', 'forward');
  if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') {
    throw new InvalidArgumentError(`${op} direction '${direction}' must be forward, reverse or bidirectional.`);
  }
  const numDirections = direction === 'bidirectional' ? 2 : 1;
  const layout = attrInt(node, 'layout', 0);
  if (layout !== 0 && layout !== 1) throw new InvalidArgumentError(`${op} layout ${layout} must be 0 or 1.`);
  const hiddenSize = attrInt(node, 'hidden_size');
  if (hiddenSize !== undefined && (!Number.isInteger(hiddenSize) || hiddenSize < 1)) {
    throw new InvalidArgumentError(`${op} hidden_size ${hiddenSize} must be a positive integer.`);
  }
  const clip = attrFloat(node, 'clip');
  if (clip !== undefined && !(clip > 0)) throw new InvalidArgumentError(`${op} clip ${clip} must be positive.`);

  const per = ACTIVATIONS_PER_DIRECTION[op];
  const given = node.attrs.activations?.type === 'strings' ? node.attrs.activations.value : undefined;
  let names: RnnActivationName[];
  if (given) {
    names = given.map((s) => activationName(op, s));
    // One direction's list may be given for a bidirectional layer: both directions then use it (onnxruntime).
    if (names.length === per && numDirections === 2) names = [...names, ...names];
    if (names.length !== per * numDirections) {
      throw new InvalidArgumentError(`${op} with direction ${direction} needs ${per * numDirections} activations, got ${names.length} (${given.join(', ')}).`);
    }
  } else names = DEFAULT_ACTIVATIONS[op].slice(0, per).concat(numDirections === 2 ? DEFAULT_ACTIVATIONS[op].slice(0, per) : []);
  const alphas = attrFloats(node, 'activation_alpha', []);
  const betas = attrFloats(node, 'activation_beta', []);
  let ai = 0;
  let bi = 0;
  const flat = names.map((name): RnnActivation => {
    const p = PARAMS[name] ?? {};
    const alpha = p.alpha === undefined ? 0 : ai < alphas.length ? alphas[ai++]! : p.alpha;
    const beta = p.beta === undefined ? 0 : bi < betas.length ? betas[bi++]! : p.beta;
    return { name, alpha, beta };
  });
  const activations = Array.from({ length: numDirections }, (_, d) => flat.slice(d * per, (d + 1) * per));

  const linearBeforeReset = attrInt(node, 'linear_before_reset', 0) !== 0;
  const inputForget = attrInt(node, 'input_forget', 0) !== 0;
  return { op, direction, numDirections, gates: RNN_GATES[op], hiddenSize, layout: layout as 0 | 1, clip, linearBeforeReset, inputForget, activations };
}

/** Checks `shape` against `want` (undefined entries are not checked), with a ShapeError naming the input. */
function checkShape(ctx: InferContext, x: InferInput | undefined, what: string, want: (Dim | undefined)[], hint = ''): void {
  const s = x?.shape;
  if (!s) return;
  const bad = s.length !== want.length || want.some((w, i) => w !== undefined && dimsConflict(s[i]!, w));
  if (bad) {
    const text = want.map((w) => w ?? '?').join(', ');
    throw new ShapeError(`${ctx.node.op} ${what} has shape [${s.join(', ')}]; it must be [${text}]${hint}.`, { shape: [...s] });
  }
}

const num = (d: Dim | undefined): number | undefined => (typeof d === 'number' ? d : undefined);

function recurrent(op: RnnOp): OpSchema {
  const lstm = op === 'LSTM';
  return {
    op,
    inputs: [3, lstm ? 8 : 6],
    outputs: [0, lstm ? 3 : 2],
    infer(ctx) {
      const cfg = rnnConfig(ctx.node);
      const x = requireInput(ctx, 0, 'X');
      const w = requireInput(ctx, 1, 'W');
      const r = requireInput(ctx, 2, 'R');
      checkDType(ctx, 'X', x.dtype, 'float');
      for (const [i, name] of ['', 'W', 'R', 'B', '', 'initial_h', 'initial_c', 'P'].entries()) {
        const t = ctx.inputs[i];
        if (t && name) checkSameDType(ctx, x.dtype, t.dtype, `X and ${name}`);
      }
      const seq = ctx.inputs[4];
      if (seq && seq.dtype !== 'int32') throw new DTypeError(`${op} sequence_lens is ${seq.dtype}; it must be int32.`, { dtype: seq.dtype });
      const D = cfg.numDirections;
      const G = cfg.gates;
      // The hidden size: the attribute, else R's last dim, else W's rows / G.
      const fromR = num(r.shape?.[2]);
      const fromW = num(w.shape?.[1]);
      const H = cfg.hiddenSize ?? fromR ?? (fromW !== undefined && fromW % G === 0 ? fromW / G : undefined);
      const hint = H !== undefined ? ` (hidden_size ${H}, ${D} direction(s), ${G} gate(s))` : '';
      const GH = H !== undefined ? G * H : undefined;
      if (x.shape && x.shape.length !== 3) throw new ShapeError(`${op} X must have rank 3, got [${x.shape.join(', ')}].`);
      const [T, Bt] = cfg.layout === 0 ? [x.shape?.[0], x.shape?.[1]] : [x.shape?.[1], x.shape?.[0]];
      const I = x.shape?.[2];
      checkShape(ctx, w, 'W', [D, GH, I], hint);
      checkShape(ctx, r, 'R', [D, GH, H], hint);
      checkShape(ctx, ctx.inputs[3], 'B', [D, GH !== undefined ? 2 * GH : undefined], hint);
      checkShape(ctx, seq, 'sequence_lens', [Bt]);
      const state = cfg.layout === 0 ? [D, Bt, H] : [Bt, D, H];
      checkShape(ctx, ctx.inputs[5], 'initial_h', state, hint);
      if (lstm) {
        checkShape(ctx, ctx.inputs[6], 'initial_c', state, hint);
        checkShape(ctx, ctx.inputs[7], 'P', [D, H !== undefined ? 3 * H : undefined], hint);
      }
      const hDim: Dim = H ?? ctx.symbol('hidden');
      const tDim: Dim = T ?? ctx.symbol('seq');
      const bDim: Dim = Bt ?? ctx.symbol('batch');
      const y: Dim[] = cfg.layout === 0 ? [tDim, D, bDim, hDim] : [bDim, tDim, D, hDim];
      const yh: Dim[] = cfg.layout === 0 ? [D, bDim, hDim] : [bDim, D, hDim];
      const shapes = [y, yh, yh];
      return ctx.node.outputs.map((_, i) => ({ dtype: x.dtype, shape: [...shapes[i]!] }));
    },
  };
}

export const schemas = defineOps(recurrent('RNN'), recurrent('GRU'), recurrent('LSTM'));
