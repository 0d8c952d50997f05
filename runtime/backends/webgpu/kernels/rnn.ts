import { ShapeError } from '../../../errors.js';
import type { Node } from '../../../ir/graph.js';
import { rnnConfig, type RnnActivation, type RnnConfig } from '../../../ir/ops/rnn.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramCall, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type BindingDecl, type ShaderBuilder, type UniformDecl } from '../wgsl/builder.js';
import { mathHelper } from '../wgsl/math.js';
import { kindOf } from './elementwise.js';
import { matmulProgram } from './matmul.js';

/**
 * RNN-22, GRU-22 and LSTM-22 on WebGPU, all inside the run's single submit; the recurrent state never leaves the GPU.
 *
 *   1. projection: one batched GEMM (matmul.ts) for every time step and direction,
 *      proj[d, row, :] = X[row, :] W[d]^T + Wb[d]          // [D, T*B, G*H], row = X's row (t, b in X's layout)
 *   2. init: the state scratch gets initial_h / initial_c (or zeros).
 *   3. one dispatch per step s (GRU with linear_before_reset = 0: two, see below), one invocation per (d, j) and
 *      block of batch rows: the G recurrent dot products R[d, g*H + j, :] . h_prev, the gate activations and the
 *      state update fused,
 *      writing Y[t] and the next state. The state ping-pongs between two slots of a scratch buffer (slot s % 2 read,
 *      the other written), so a step never reads what it writes.
 *   4. finish: Y_h / Y_c from the last slot (zero for a row of length 0, as the CPU reference and onnxruntime).
 *
 * GRU with linear_before_reset = 0 needs the whole reset-gated state (r (.) h_prev) before any candidate element:
 * step s is a gates dispatch (z and r (.) h_prev into scratch) then an update dispatch.
 *
 * sequence_lens is read on the host (hostInputs): the session bakes its value into the plan (one plan per value),
 * so a length past the sequence is a typed error when the run plans, and the lengths reach the shader as a constant
 * table. Row b runs its own length L: forward t = s, reverse t = L - 1 - s; at steps s >= L the state is carried and
 * Y[s] is written zero, so every Y element is written exactly once.
 *
 * W and R are read on the host too (hostInputs; initializers, or fed inputs baked into the plan) and uploaded transposed
 * as plan-time tables, W^T [D, I, G*H] and R^T [D, H, G*H], so the GEMM and the step kernels read them along rows.
 * Each step invocation computes RB batch rows (4, 2 or 1 by batch size) of one (d, j), so every R^T value loaded
 * serves RB rows. Measured with InferenceSession.profile() on SwiftShader (2 shared, busy cores: numbers vary about
 * 2x run to run; best of 6), LSTM T=16 I=64, GPU ms per step dispatch. R read down its columns -> R^T (separate runs):
 * B=1 H=32 0.17 -> 0.04, B=1 H=128 1.03 -> 0.32, B=16 H=128 7.9 -> 5.4. One row per invocation -> row blocks (same
 * process, both R^T): B=16 H=128 15.6 -> 5.1, B=4 H=256 5.1 -> 2.9; GRU (linear_before_reset=0) B=16 H=128 3.3 -> 2.2.
 *
 * Shapes, strides (layout 0 and 1 differ only there), the step index and activation alpha/beta are uniforms; the key
 * holds the op, the phase, the row blocking, the activation names, and which optional inputs/outputs exist.
 * No persistent kernel: WGSL has no grid-wide barrier, so one would be a single workgroup looping over the steps
 * with a workgroupBarrier() each, which caps the parallelism at one workgroup; on SwiftShader a barrier is a switch
 * between the workgroup's coroutines (see matmul.ts), while a step dispatch of a small layer (H=32, B=1) measured
 * 0.03-0.05 ms, so it was not tried.
 */

const WG = 64;
/** Activations per direction (RNN f; GRU f, g; LSTM f, g, h); alpha/beta uniforms for up to two directions. */
const PER_DIR: Readonly<Record<RnnConfig['op'], number>> = { RNN: 1, GRU: 2, LSTM: 3 };
const MAX_ACTS = 6;

type Phase = 'step' | 'gru_gates' | 'gru_update';

interface RnnGeometry {
  cfg: RnnConfig;
  T: number;
  B: number;
  I: number;
  H: number;
  D: number;
  /** Elements of one state slot: D * B * H. */
  dbh: number;
  /** State slots in the scratch: h ping-pong (2), plus c ping-pong (LSTM) or z and r (.) h (GRU, lbr = 0). */
  slots: number;
  /** Element strides of X rows (in proj rows) over t and b; of Y over t, d, b; of states over d, b. */
  xStT: number;
  xStB: number;
  yStT: number;
  yStD: number;
  yStB: number;
  sStD: number;
  sStB: number;
}

function geometry(node: Node, x: GpuTensorInfo, h: number): RnnGeometry {
  const cfg = rnnConfig(node);
  const l0 = cfg.layout === 0;
  const [T, B] = l0 ? [x.shape[0]!, x.shape[1]!] : [x.shape[1]!, x.shape[0]!];
  const D = cfg.numDirections;
  const twoPhase = cfg.op === 'GRU' && !cfg.linearBeforeReset;
  return {
    cfg, T, B, I: x.shape[2]!, H: h, D, dbh: D * B * h,
    slots: cfg.op === 'LSTM' || twoPhase ? 4 : 2,
    xStT: l0 ? B : 1, xStB: l0 ? 1 : T,
    yStT: l0 ? D * B * h : D * h, yStD: l0 ? B * h : h, yStB: l0 ? h : T * D * h,
    sStD: l0 ? B * h : h, sStB: l0 ? h : D * h,
  };
}

/** WGSL for one activation of the spec's list applied to `x` (f32), alpha/beta from uniforms `a`, `b`. */
function activationWgsl(sb: ShaderBuilder, act: RnnActivation, x: string, a: string, b: string): string {
  switch (act.name) {
    case 'Relu': return `max(${x}, 0.0)`;
    case 'Tanh': return `${mathHelper(sb, 'tanh', 'f32')}(${x})`;
    case 'Sigmoid': return `${mathHelper(sb, 'sigmoid', 'f32')}(${x})`;
    case 'Affine': return `${a} * ${x} + ${b}`;
    case 'LeakyRelu': return `select(${a} * ${x}, ${x}, ${x} >= 0.0)`;
    case 'ThresholdedRelu': return `select(0.0, ${x}, ${x} > ${a})`;
    case 'ScaledTanh': return `${a} * ${mathHelper(sb, 'tanh', 'f32')}(${b} * ${x})`;
    case 'HardSigmoid': return `clamp(${a} * ${x} + ${b}, 0.0, 1.0)`;
    case 'Elu': return `select(${a} * (${mathHelper(sb, 'expm1', 'f32')}(${x})), ${x}, ${x} >= 0.0)`;
    case 'Softsign': return `${x} / (1.0 + abs(${x}))`;
    case 'Softplus': return `${mathHelper(sb, 'softplus', 'f32')}(${x})`;
  }
}

/** Defines `fn act_<k>(d: u32, x: f32) -> f32` for activation slot k of each direction; returns a caller. */
function defineActivations(sb: ShaderBuilder, cfg: RnnConfig): (k: number, x: string) => string {
  const per = PER_DIR[cfg.op];
  for (let k = 0; k < per; k++) {
    const body = cfg.activations.map((list, d) => {
      const i = d * per + k;
      return `return ${activationWgsl(sb, list[k]!, 'x', `u.alpha_${i}`, `u.beta_${i}`)};`;
    });
    const code = body.length === 1 ? `  ${body[0]}` : `  if (d == 0u) { ${body[0]} }\n  ${body[1]}`;
    sb.helper(`fn act_${k}(d: u32, x: f32) -> f32 {\n${code}\n}`);
  }
  return (k, x) => `act_${k}(d, ${x})`;
}

const activationKey = (cfg: RnnConfig) => cfg.activations.map((l) => l.map((a) => a.name).join(',')).join('/');

function activationValues(cfg: RnnConfig): Record<string, number[]> {
  const flat = cfg.activations.flat();
  const pad = (v: number[]) => [...v, ...new Array<number>(MAX_ACTS - v.length).fill(0)];
  return { alpha: pad(flat.map((a) => a.alpha)), beta: pad(flat.map((a) => a.beta)) };
}

interface Present {
  bias: boolean;
  seq: boolean;
  peep: boolean;
  y: boolean;
}

const COMMON_UNIFORMS: UniformDecl[] = [
  ...['dbh', 'batch', 'hidden', 'gh', 'seq_len', 'tb', 'reverse', 'x_st_t', 'x_st_b', 'y_st_t', 'y_st_d', 'y_st_b', 's_st_d', 's_st_b'].map(
    (name) => ({ name, type: 'u32' as const }),
  ),
];

function commonValues(g: RnnGeometry): Record<string, number> {
  return {
    dbh: g.dbh, batch: g.B, hidden: g.H, gh: g.cfg.gates * g.H, seq_len: g.T, tb: g.T * g.B,
    reverse: g.cfg.direction === 'reverse' ? 1 : 0,
    x_st_t: g.xStT, x_st_b: g.xStB, y_st_t: g.yStT, y_st_d: g.yStD, y_st_b: g.yStB, s_st_d: g.sStD, s_st_b: g.sStB,
  };
}

/** Prologue lines shared by the programs over (d, b, j): indices, the row's length L. */
function prologue(sb: ShaderBuilder, seq: boolean): string[] {
  return [
    sb.linearIndex('u.dbh'),
    'let j = index % u.hidden;',
    'let row = index / u.hidden; // d * B + b',
    'let bi = row % u.batch;',
    'let d = row / u.batch;',
    'let si = row * u.hidden + j; // (d, b, j) within a state slot',
    seq ? `let len = min(u32(max(${sb.load('seq_lens', 'bi')}, 0)), u.seq_len);` : 'let len = u.seq_len;',
  ];
}

/** The recurrent step programs (see the file comment). */
function stepProgram(g: RnnGeometry, p: Present, phase: Phase, bias: GpuTensorInfo | undefined, peep: GpuTensorInfo | undefined, y: GpuTensorInfo | undefined, step: number): ProgramSpec {
  const { cfg } = g;
  const bindings: BindingDecl[] = [
    { name: 'proj', type: 'f32' },
    { name: 'rt', type: 'f32' },
    ...(p.bias ? [{ name: 'bias', type: bias!.storage }] : []),
    ...(p.seq ? [{ name: 'seq_lens', type: 'i32' as const }] : []),
    ...(p.peep ? [{ name: 'peep', type: peep!.storage }] : []),
    { name: 'state', type: 'f32' },
    ...(p.y && phase !== 'gru_gates' ? [{ name: 'y', type: y!.storage }] : []),
  ];
  const uniforms: UniformDecl[] = [
    ...COMMON_UNIFORMS,
    { name: 'invocations', type: 'u32' },
    { name: 'blocks', type: 'u32' },
    { name: 'step', type: 'u32' },
    { name: 'clip', type: 'f32' },
    { name: 'alpha', type: 'f32', length: MAX_ACTS },
    { name: 'beta', type: 'f32', length: MAX_ACTS },
  ];
  // Batch rows per invocation: 4 where the batch allows (4 rows share each R load), else 2 or 1.
  const rb = g.B >= 4 ? 4 : g.B >= 2 ? 2 : 1;
  const blocks = Math.ceil(g.B / rb);
  const invocations = g.D * blocks * g.H;
  const flags = [cfg.op, phase, `rb${rb}`, p.bias ? 'bias' : '', p.seq ? 'seq' : '', p.peep ? 'peep' : '', p.y ? 'y' : '', cfg.clip !== undefined ? 'clip' : '',
    cfg.linearBeforeReset ? 'lbr' : '', cfg.inputForget ? 'coupled' : ''].filter(Boolean).join(':');
  return {
    key: `rnn-step:${flags}:acts=${activationKey(cfg)}`,
    bindings,
    uniforms,
    workgroupSize: [WG, 1, 1],
    source(sb) {
      const act = defineActivations(sb, cfg);
      const clip = (v: string) => (cfg.clip !== undefined ? `clamp(${v}, -u.clip, u.clip)` : v);
      const f = (k: number, v: string) => act(k, clip(v));
      const L = (name: string, i: string) => sb.loadAs(name, i, 'f32');
      // Gate g's input projection plus recurrent bias Rb[d, g*H + j].
      const pre = (gate: number) => `${L('proj', `pb + ${gate}u * u.hidden`)}${p.bias ? ` + ${L('bias', `d * 2u * u.gh + u.gh + ${gate}u * u.hidden + j`)}` : ''}`;
      // The recurrent products h_prev . R^T for RB batch rows of one (d, j): each R^T value loaded serves RB rows.
      // R^T is stored [D, H, G*H], so neighbouring invocations (j) read neighbouring addresses at each k.
      const gates = cfg.op === 'RNN' ? [0] : phase === 'gru_gates' ? [0, 1] : phase === 'gru_update' ? [2] : cfg.op === 'GRU' ? [0, 1, 2] : [0, 1, 2, 3];
      const src = phase === 'gru_update' ? '3u * u.dbh' : 'cur'; // r (.) h_prev (slot 3) or h_prev
      const rows = Array.from({ length: rb }, (_, r) => r);
      const n = gates.length * rb;
      const lines = [
        sb.linearIndex('u.invocations'),
        'let j = index % u.hidden;',
        'let blk = index / u.hidden; // d * blocks + block',
        'let d = blk / u.blocks;',
        `let b0 = (blk % u.blocks) * ${rb}u;`,
        'let s = u.step;',
        'let cur = (s % 2u) * u.dbh;',
        'let nxt = u.dbh - cur;',
        ...rows.map((r) => `let h_base_${r} = ${src} + (d * u.batch + min(b0 + ${r}u, u.batch - 1u)) * u.hidden;`),
        `var acc: array<f32, ${n}>; // [gate, row]`,
        'for (var k = 0u; k < u.hidden; k = k + 1u) {',
        '  let rt_row = (d * u.hidden + k) * u.gh + j;',
        ...gates.map((gi) => `  let w_${gi} = rt[rt_row + ${gi}u * u.hidden];`),
        ...rows.map((r) => `  let h_${r} = state[h_base_${r} + k];`),
        ...gates.flatMap((gi, q) => rows.map((r) => `  acc[${q * rb + r}] = acc[${q * rb + r}] + w_${gi} * h_${r};`)),
        '}',
        `for (var r = 0u; r < ${rb}u; r = r + 1u) {`,
        '  let bi = b0 + r;',
        '  if (bi >= u.batch) { break; }',
        '  let row = d * u.batch + bi;',
        '  let si = row * u.hidden + j; // (d, b, j) within a state slot',
        p.seq ? `  let len = min(u32(max(${sb.load('seq_lens', 'bi')}, 0)), u.seq_len);` : '  let len = u.seq_len;',
        '  let valid = s < len;',
        '  var t = s;',
        '  if (valid && (d == 1u || u.reverse == 1u)) { t = len - 1u - s; }',
      ];
      const yStore = (v: string) => (p.y ? [sb.store('y', 't * u.y_st_t + d * u.y_st_d + bi * u.y_st_b + j', convert(computeTypeOf(y!.storage), 'f32', v))] : []);
      const carry = cfg.op === 'LSTM'
        ? ['state[nxt + si] = state[cur + si];', 'state[2u * u.dbh + nxt + si] = state[2u * u.dbh + cur + si];']
        : ['state[nxt + si] = state[cur + si];'];
      const body: string[] = [];
      if (phase === 'gru_gates') body.push('if (!valid) { continue; }');
      else body.push('if (!valid) {', ...carry.map((c) => `  ${c}`), ...yStore('0.0').map((c) => `  ${c}`), '  continue;', '}');
      body.push('let pb = (d * u.tb + t * u.x_st_t + bi * u.x_st_b) * u.gh + j;', 'let h_prev = state[cur + si];');
      body.push(...gates.map((gi, q) => `let rec_${gi} = acc[${q * rb}u + r];`));
      if (cfg.op === 'RNN') {
        body.push(`let h = ${f(0, `${pre(0)} + rec_0`)};`);
      } else if (phase === 'gru_gates') {
        // z into slot 2, r (.) h_prev into slot 3.
        body.push(`state[2u * u.dbh + si] = ${f(0, `${pre(0)} + rec_0`)};`, `state[3u * u.dbh + si] = ${f(0, `${pre(1)} + rec_1`)} * h_prev;`);
      } else if (phase === 'gru_update') {
        // ht = g(Xt Wh^T + (rt (.) Ht-1) Rh^T + Rbh + Wbh); Ht = (1 - zt) ht + zt Ht-1
        body.push('let z = state[2u * u.dbh + si];', `let cand = ${f(1, `${pre(2)} + rec_2`)};`, 'let h = (1.0 - z) * cand + z * h_prev;');
      } else if (cfg.op === 'GRU') {
        // linear_before_reset: ht = g(Xt Wh^T + rt (.) (Ht-1 Rh^T + Rbh) + Wbh)
        const rbh = p.bias ? ` + ${L('bias', 'd * 2u * u.gh + u.gh + 2u * u.hidden + j')}` : '';
        const wh = L('proj', 'pb + 2u * u.hidden');
        body.push(`let z = ${f(0, `${pre(0)} + rec_0`)};`, `let rg = ${f(0, `${pre(1)} + rec_1`)};`,
          `let cand = ${f(1, `${wh} + rg * (rec_2${rbh})`)};`, 'let h = (1.0 - z) * cand + z * h_prev;');
      } else {
        // LSTM gates i, o, f, c; peepholes P = [Pi, Po, Pf].
        const pp = (o: string, c: string) => (p.peep ? ` + ${L('peep', `d * 3u * u.hidden + ${o} + j`)} * ${c}` : '');
        body.push('let c_prev = state[2u * u.dbh + cur + si];',
          `let ig = ${f(0, `${pre(0)} + rec_0${pp('0u', 'c_prev')}`)};`,
          cfg.inputForget ? 'let fg = 1.0 - ig;' : `let fg = ${f(0, `${pre(2)} + rec_2${pp('2u * u.hidden', 'c_prev')}`)};`,
          `let cg = ${f(1, `${pre(3)} + rec_3`)};`,
          'let c = fg * c_prev + ig * cg;',
          `let og = ${f(0, `${pre(1)} + rec_1${pp('u.hidden', 'c')}`)};`,
          `let h = og * ${act(2, 'c')};`,
          'state[2u * u.dbh + nxt + si] = c;');
      }
      if (phase !== 'gru_gates') body.push('state[nxt + si] = h;', ...yStore('h'));
      lines.push(...body.map((l) => `  ${l}`), '}');
      sb.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(invocations, WG),
        uniforms: { ...commonValues(g), invocations, blocks, step, clip: cfg.clip ?? 0, ...activationValues(cfg) },
      };
    },
  };
}

/** Writes the initial state into slot 0 (h, and c at slot 2 for LSTM): initial_h / initial_c, or zeros. */
function initProgram(g: RnnGeometry, h0: GpuTensorInfo | undefined, c0: GpuTensorInfo | undefined): ProgramSpec {
  const lstm = g.cfg.op === 'LSTM';
  return {
    key: `rnn-init:${h0 ? 'h0' : 'zero'}:${lstm ? (c0 ? 'c0' : 'czero') : 'noc'}`,
    bindings: [...(h0 ? [{ name: 'h0', type: h0.storage }] : []), ...(c0 ? [{ name: 'c0', type: c0.storage }] : []), { name: 'state', type: 'f32' }],
    uniforms: COMMON_UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(sb) {
      const at = 'd * u.s_st_d + bi * u.s_st_b + j';
      const lines = [...prologue(sb, false), `state[si] = ${h0 ? sb.loadAs('h0', at, 'f32') : '0.0'};`];
      if (lstm) lines.push(`state[2u * u.dbh + si] = ${c0 ? sb.loadAs('c0', at, 'f32') : '0.0'};`);
      sb.main(lines.join('\n  '));
    },
    run: () => ({ workgroups: dispatchLinear(g.dbh, WG), uniforms: commonValues(g) }),
  };
}

/** Y_h / Y_c from the slot the last step wrote (T % 2); zero for rows of length 0. */
function finishProgram(g: RnnGeometry, seq: boolean, yh: GpuTensorInfo | undefined, yc: GpuTensorInfo | undefined): ProgramSpec {
  return {
    key: `rnn-finish:${seq ? 'seq' : 'noseq'}:${yh ? 'yh' : ''}:${yc ? 'yc' : ''}`,
    bindings: [
      ...(seq ? [{ name: 'seq_lens', type: 'i32' as const }] : []),
      { name: 'state', type: 'f32' },
      ...(yh ? [{ name: 'yh', type: yh.storage }] : []),
      ...(yc ? [{ name: 'yc', type: yc.storage }] : []),
    ],
    uniforms: [...COMMON_UNIFORMS, { name: 'last', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(sb) {
      const at = 'd * u.s_st_d + bi * u.s_st_b + j';
      const lines = [...prologue(sb, seq), 'let keep = len > 0u;'];
      if (yh) lines.push(sb.store('yh', at, convert(computeTypeOf(yh.storage), 'f32', 'select(0.0, state[u.last + si], keep)')));
      if (yc) lines.push(sb.store('yc', at, convert(computeTypeOf(yc.storage), 'f32', 'select(0.0, state[2u * u.dbh + u.last + si], keep)')));
      sb.main(lines.join('\n  '));
    },
    run: () => ({ workgroups: dispatchLinear(g.dbh, WG), uniforms: { ...commonValues(g), last: (g.T % 2) * g.dbh } }),
  };
}

/** Transposed weights by source tensor: every plan of a session gets the same table object (KernelPlan.sharedConstants). */
const transposed = new WeakMap<HostTensor, HostTensor>();

/** [D, rows, cols] -> [D, cols, rows] as float32 (a plan-time table), made once per weight tensor. */
function transposeInner(t: HostTensor, D: number, rows: number, cols: number): HostTensor {
  let out = transposed.get(t);
  if (!out) transposed.set(t, (out = transposeNow(t, D, rows, cols)));
  return out;
}

function transposeNow(t: HostTensor, D: number, rows: number, cols: number): HostTensor {
  const v = tensorToNumbers(t);
  const out = new Float32Array(D * rows * cols);
  for (let d = 0; d < D; d++) {
    for (let i = 0; i < rows; i++) for (let k = 0; k < cols; k++) out[(d * cols + k) * rows + i] = v[(d * rows + i) * cols + k]!;
  }
  return { dtype: 'float32', shape: [D, cols, rows], data: out };
}

function recurrent(op: 'RNN' | 'GRU' | 'LSTM'): GpuKernel {
  return {
    hostInputs: [1, 2, 4],
    plan(node, inputs, outputs, env): KernelPlan {
      const [x, w, r, bias, seqIn, h0, c0, peep] = inputs;
      if (!w!.value || !r!.value) throw new GpuUnsupported(`${op} W and R must be values known when the run plans (initializers or fed inputs)`);
      const [y, yh, yc] = outputs;
      for (const t of [x, w, r, bias, h0, c0, peep]) {
        if (t && kindOf(t.dtype) !== 'f') throw new GpuUnsupported(`${op} on ${t.dtype} has no WebGPU kernel (float only)`);
      }
      const hidden = (y ?? yh ?? yc)?.shape.at(-1);
      if (hidden === undefined) return { calls: [] }; // no output is used
      const g = geometry(node, x!, hidden);
      const { cfg, T, B, D, H } = g;
      const G = cfg.gates;
      if (g.dbh === 0) return { calls: [] };
      // sequence_lens: its value is known here (hostInputs); checked like the CPU reference.
      // W^T [D, I, G*H] and R^T [D, H, G*H], made once at plan time: the projection GEMM and the step kernels read
      // them along rows (contiguous across invocations) instead of down columns.
      const constants: HostTensor[] = [transposeInner(w!.value, D, G * H, g.I), transposeInner(r!.value, D, G * H, H)];
      const WT: TensorSlot = { constant: 0 };
      const RT: TensorSlot = { constant: 1 };
      if (seqIn) {
        if (!seqIn.value) throw new GpuUnsupported(`${op} sequence_lens must be a value known when the run plans`);
        const lens = Array.from(tensorToNumbers(seqIn.value));
        lens.forEach((len, b) => {
          if (!Number.isInteger(len) || len < 0 || len > T) {
            throw new ShapeError(`${op} sequence_lens[${b}] is ${len}; each length must lie in [0, ${T}] (the sequence length of X).`, { row: b, length: len, seqLength: T });
          }
        });
        constants.push(tensorFromNumbers('int32', [B], lens));
      }
      const p: Present = { bias: !!bias, seq: !!seqIn, peep: !!peep, y: !!y };
      const proj: GpuTensorInfo = { dtype: 'float32', shape: [D, T * B, G * H], storage: 'f32' };
      const state: GpuTensorInfo = { dtype: 'float32', shape: [g.slots, D, B, H], storage: 'f32' };
      const PROJ: TensorSlot = { scratch: 0 };
      const STATE: TensorSlot = { scratch: 1 };
      const SEQ: TensorSlot[] = seqIn ? [{ constant: 2 }] : [];
      const GH = G * H;
      const calls: ProgramCall[] = [];
      // 1. proj = X W^T + Wb for every step: batch over directions, A = X rows [T*B, I], B = W^T[d] [I, G*H].
      const wt: GpuTensorInfo = { dtype: 'float32', shape: [D, g.I, GH], storage: 'f32' };
      const projection = matmulProgram(x!, wt, proj, {
        batchShape: [D], aBatchStrides: [0], bBatchStrides: [GH * g.I], cBatchStrides: [2 * GH],
        m: T * B, n: GH, k: g.I, aStride: [g.I, 1], bStride: [GH, 1],
      }, bias ? { c: { info: bias, strideM: 0, strideN: 1 }, beta: 1 } : {}, env.cpuAdapter);
      calls.push({ program: projection, tensors: [{ input: 0 }, WT, ...(bias ? [{ input: 3 }] : []), PROJ] });
      // 2. initial state.
      calls.push({ program: initProgram(g, h0, op === 'LSTM' ? c0 : undefined), tensors: [...(h0 ? [{ input: 5 }] : []), ...(op === 'LSTM' && c0 ? [{ input: 6 }] : []), STATE] });
      // 3. the steps.
      const stepTensors = (phase: Phase): TensorSlot[] => [
        PROJ, RT, ...(bias ? [{ input: 3 }] : []), ...SEQ, ...(peep && op === 'LSTM' ? [{ input: 7 }] : []), STATE,
        ...(y && phase !== 'gru_gates' ? [{ output: 0 }] : []),
      ];
      const phases: Phase[] = op === 'GRU' && !cfg.linearBeforeReset ? ['gru_gates', 'gru_update'] : ['step'];
      const pp: Present = { ...p, peep: p.peep && op === 'LSTM' };
      for (let s = 0; s < T; s++) {
        for (const phase of phases) calls.push({ program: stepProgram(g, pp, phase, bias, peep, y, s), tensors: stepTensors(phase) });
      }
      // 4. Y_h / Y_c.
      const ycOut = op === 'LSTM' ? yc : undefined;
      if (yh || ycOut) {
        calls.push({ program: finishProgram(g, !!seqIn, yh, ycOut), tensors: [...SEQ, STATE, ...(yh ? [{ output: 1 }] : []), ...(ycOut ? [{ output: 2 }] : [])] });
      }
      return { calls, scratch: [proj, state], constants, sharedConstants: [0, 1] };
    },
  };
}

export const kernels: Record<string, GpuKernel> = { RNN: recurrent('RNN'), GRU: recurrent('GRU'), LSTM: recurrent('LSTM') };
