import { InvalidArgumentError } from '../../../errors.js';
import type { Node } from '../../../ir/graph.js';
import { rnnConfig, schemas, type RnnActivation, type RnnConfig } from '../../../ir/ops/rnn.js';
import type { HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel, CpuKernelContext } from '../kernel.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * RNN-22, GRU-22 and LSTM-22 on the CPU, written to read like the ONNX operator spec: one batch row and one
 * direction at a time, one step at a time, in float64, rounded once into the output type. Gate order in W, R and
 * B is the spec's: GRU z, r, h; LSTM i, o, f, c; P is [Pi, Po, Pf].
 *
 * sequence_lens: row b runs for its own length L (forward t = 0..L-1, reverse t = L-1..0); Y is zero at t >= L and
 * Y_h / Y_c hold the state after the row's last valid step (zero when L = 0, as in onnxruntime).
 */

/** One activation function of the spec's list (ONNX operators, Changelog "RNN activation functions"). */
export function applyActivation(a: RnnActivation, x: number): number {
  const { alpha, beta } = a;
  switch (a.name) {
    case 'Relu': return Math.max(0, x);
    case 'Tanh': return Math.tanh(x);
    case 'Sigmoid': return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    case 'Affine': return alpha * x + beta;
    case 'LeakyRelu': return x >= 0 ? x : alpha * x;
    case 'ThresholdedRelu': return x > alpha ? x : 0;
    case 'ScaledTanh': return alpha * Math.tanh(beta * x);
    case 'HardSigmoid': return Math.max(0, Math.min(1, alpha * x + beta));
    case 'Elu': return x >= 0 ? x : alpha * (Math.exp(x) - 1);
    case 'Softsign': return x / (1 + Math.abs(x));
    case 'Softplus': return x > 30 ? x : Math.log1p(Math.exp(x));
  }
}

/** Dims and a reader for the inputs, in the layout-0 terms of the spec. */
interface Problem {
  cfg: RnnConfig;
  T: number;
  batch: number;
  I: number;
  H: number;
  x: Float64Array;
  w: Float64Array;
  r: Float64Array;
  /** [D, 2*G*H]: Wb then Rb; zeros when B is omitted. */
  b: Float64Array;
  /** Each row's length, checked to lie in [0, T]. */
  lens: number[];
  h0: Float64Array;
  c0: Float64Array;
  /** [D, 3*H] peepholes; zeros when P is omitted. */
  p: Float64Array;
}

/** Index of X[t, b, i] (layout 0) or X[b, t, i] (layout 1). */
const xIndex = (q: Problem, t: number, b: number, i: number) => (q.cfg.layout === 0 ? (t * q.batch + b) * q.I + i : (b * q.T + t) * q.I + i);
/** Index of a state element [d, b, j] (layout 0) or [b, d, j] (layout 1): initial_h, initial_c, Y_h, Y_c. */
const stateIndex = (q: Problem, d: number, b: number, j: number) =>
  q.cfg.layout === 0 ? (d * q.batch + b) * q.H + j : (b * q.cfg.numDirections + d) * q.H + j;
/** Index of Y[t, d, b, j] (layout 0) or Y[b, t, d, j] (layout 1). */
const yIndex = (q: Problem, t: number, d: number, b: number, j: number) => {
  const D = q.cfg.numDirections;
  return q.cfg.layout === 0 ? ((t * D + d) * q.batch + b) * q.H + j : ((b * q.T + t) * D + d) * q.H + j;
};

function problem(inputs: (HostTensor | undefined)[], node: Node, H: number): Problem {
  const cfg = rnnConfig(node);
  const [X, W, R, B, SL, H0, C0, P] = inputs;
  const [T, batch] = cfg.layout === 0 ? [X!.shape[0]!, X!.shape[1]!] : [X!.shape[1]!, X!.shape[0]!];
  const D = cfg.numDirections;
  const G = cfg.gates;
  const lens = SL ? Array.from(toF64(SL)) : new Array<number>(batch).fill(T);
  lens.forEach((L, b) => {
    if (!Number.isInteger(L) || L < 0 || L > T) {
      throw new InvalidArgumentError(`${node.op} sequence_lens[${b}] is ${L}; each length must lie in [0, ${T}] (the sequence length of X).`, { row: b, length: L, seqLength: T });
    }
  });
  return {
    cfg, T, batch, I: X!.shape[2]!, H,
    x: toF64(X!), w: toF64(W!), r: toF64(R!),
    b: B ? toF64(B) : new Float64Array(D * 2 * G * H),
    lens,
    h0: H0 ? toF64(H0) : new Float64Array(D * batch * H),
    c0: C0 ? toF64(C0) : new Float64Array(D * batch * H),
    p: P ? toF64(P) : new Float64Array(D * 3 * H),
  };
}

/** The gate pre-activations of one step: Wx[g*H + j] = W[d] x_t + Wb[d], Rh[g*H + j] = R[d] h + Rb[d]. */
function projections(q: Problem, d: number, t: number, b: number, h: Float64Array): { wx: Float64Array; rh: Float64Array } {
  const { I, H } = q;
  const GH = q.cfg.gates * H;
  const wx = new Float64Array(GH);
  const rh = new Float64Array(GH);
  for (let row = 0; row < GH; row++) {
    let sw = q.b[d * 2 * GH + row]!;
    for (let i = 0; i < I; i++) sw += q.w[(d * GH + row) * I + i]! * q.x[xIndex(q, t, b, i)]!;
    let sr = q.b[d * 2 * GH + GH + row]!;
    for (let k = 0; k < H; k++) sr += q.r[(d * GH + row) * H + k]! * h[k]!;
    wx[row] = sw;
    rh[row] = sr;
  }
  return { wx, rh };
}

/** One time step of one direction for one batch row: updates h (and c) in place. */
function step(q: Problem, d: number, t: number, b: number, h: Float64Array, c: Float64Array): void {
  const { H, cfg } = q;
  const acts = cfg.activations[d]!;
  const clip = (v: number) => (cfg.clip === undefined ? v : Math.max(-cfg.clip, Math.min(cfg.clip, v)));
  const act = (k: number, v: number) => applyActivation(acts[k]!, clip(v));
  const { wx, rh } = projections(q, d, t, b, h);
  if (cfg.op === 'RNN') {
    // Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb)
    for (let j = 0; j < H; j++) h[j] = act(0, wx[j]! + rh[j]!);
  } else if (cfg.op === 'GRU') {
    // Gates z, r, h at offsets 0, H, 2H of W, R and the biases.
    const GH = 3 * H;
    const z = new Float64Array(H);
    const r = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      z[j] = act(0, wx[j]! + rh[j]!); // zt = f(Xt Wz^T + Ht-1 Rz^T + Wbz + Rbz)
      r[j] = act(0, wx[H + j]! + rh[H + j]!); // rt = f(Xt Wr^T + Ht-1 Rr^T + Wbr + Rbr)
    }
    const cand = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      let recurrent: number;
      if (cfg.linearBeforeReset) {
        // ht = g(Xt Wh^T + rt (.) (Ht-1 Rh^T + Rbh) + Wbh)
        recurrent = r[j]! * rh[2 * H + j]!;
      } else {
        // ht = g(Xt Wh^T + (rt (.) Ht-1) Rh^T + Rbh + Wbh)
        recurrent = q.b[d * 2 * GH + GH + 2 * H + j]!;
        for (let k = 0; k < H; k++) recurrent += q.r[(d * GH + 2 * H + j) * H + k]! * r[k]! * h[k]!;
      }
      cand[j] = act(1, wx[2 * H + j]! + recurrent);
    }
    // Ht = (1 - zt) (.) ht + zt (.) Ht-1
    for (let j = 0; j < H; j++) h[j] = (1 - z[j]!) * cand[j]! + z[j]! * h[j]!;
  } else {
    // LSTM, gates i, o, f, c at offsets 0, H, 2H, 3H; peepholes P = [Pi, Po, Pf].
    const pOff = d * 3 * H;
    for (let j = 0; j < H; j++) {
      const i = act(0, wx[j]! + rh[j]! + q.p[pOff + j]! * c[j]!);
      // input_forget couples the gates: the forget gate is 1 - i (as onnxruntime reads "couple").
      const f = cfg.inputForget ? 1 - i : act(0, wx[2 * H + j]! + rh[2 * H + j]! + q.p[pOff + 2 * H + j]! * c[j]!);
      const g = act(1, wx[3 * H + j]! + rh[3 * H + j]!);
      const cNew = f * c[j]! + i * g; // Ct = ft (.) Ct-1 + it (.) ct
      const o = act(0, wx[H + j]! + rh[H + j]! + q.p[pOff + H + j]! * cNew);
      c[j] = cNew;
      h[j] = o * applyActivation(acts[2]!, cNew); // Ht = ot (.) h(Ct)
    }
  }
}

/** Runs every direction over every batch row. Outputs: Y, Y_h, Y_c (each only where the node names it). */
function recurrent(op: 'RNN' | 'GRU' | 'LSTM'): CpuKernel {
  return (inputs: (HostTensor | undefined)[], node: Node, ctx: CpuKernelContext) => {
    const outs = inferConcrete(schemas[op], node, inputs, ctx);
    if (!outs.length) return [];
    // Every output (named or omitted '') is inferred; its last dim is the hidden size.
    const q = problem(inputs, node, outs[0]!.shape.at(-1)!);
    const { T, batch, H } = q;
    const D = q.cfg.numDirections;
    const y = new Float64Array(T * D * batch * H); // zero where t >= the row's length
    const yh = new Float64Array(D * batch * H);
    const yc = new Float64Array(D * batch * H);
    for (let d = 0; d < D; d++) {
      const reverse = q.cfg.direction === 'reverse' || d === 1;
      for (let b = 0; b < batch; b++) {
        const h = Float64Array.from({ length: H }, (_, j) => q.h0[stateIndex(q, d, b, j)]!);
        const c = Float64Array.from({ length: H }, (_, j) => q.c0[stateIndex(q, d, b, j)]!);
        const L = q.lens[b]!;
        for (let s = 0; s < L; s++) {
          const t = reverse ? L - 1 - s : s;
          step(q, d, t, b, h, c);
          for (let j = 0; j < H; j++) y[yIndex(q, t, d, b, j)] = h[j]!;
        }
        if (L === 0) continue; // a row of length 0 has zero Y_h / Y_c (onnxruntime), not its initial state
        for (let j = 0; j < H; j++) {
          yh[stateIndex(q, d, b, j)] = h[j]!;
          yc[stateIndex(q, d, b, j)] = c[j]!;
        }
      }
    }
    const values = [y, yh, yc];
    return outs.map((o, i) => fromF64(o, values[i]!));
  };
}

export const kernels: Record<string, CpuKernel> = { RNN: recurrent('RNN'), GRU: recurrent('GRU'), LSTM: recurrent('LSTM') };
