import type { OptimizerConfig } from '../../../../train/optimizers.js';
import type { ProgramSpec } from '../../program.js';

/**
 * The WGSL programs of the GPU optimizer step (runtime/backends/webgpu/optimizer.ts drives them): gradient
 * statistics in two reductions, then the guarded, clipped update over the flat buffer
 * [params | grads | slot 0 | ...], each section `u.len` floats.
 */

export const OPTIMIZER_WG = 256;
const WG = OPTIMIZER_WG;
/** Word offsets in the stats buffer. The loss sits at word 0 so a plan can bind it at offset 0. */
export const STAT = { loss: 0, bad: 64, badIndex: 65, badBits: 66, norm: 67, coef: 68, lossBad: 69 } as const;
export const STATS_WORDS = 72;
export const STATS_BYTES = 512;
export const NONE = 0xffffffff;

export interface GpuClip {
  value?: number;
  norm?: number;
}

export interface StepStats {
  loss: number;
  /** The loss or a gradient element was not finite: the step was not applied. */
  bad: boolean;
  lossBad: boolean;
  /** Flat index (in the gradient section) of the first non-finite gradient element, and its value. */
  badIndex?: number;
  badValue?: number;
  /** 2-norm of the gradient before clipping. */
  gradNorm: number;
}

function finiteFn(): string {
  return `fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}`;
}

/** The workgroup arrays both reduction stages share: sums of squares (raw, value-clipped) and the first bad element. */
function declareReduction(b: { helper(code: string): void }): void {
  b.helper(finiteFn());
  b.helper(`var<workgroup> sum_raw: array<f32, ${WG}>;`);
  b.helper(`var<workgroup> sum_clip: array<f32, ${WG}>;`);
  b.helper(`var<workgroup> bad_index: array<u32, ${WG}>;`);
  b.helper(`var<workgroup> bad_bits: array<u32, ${WG}>;`);
}

/** Tree reduction of each lane's (raw, clipped, first, bits) into lane 0: sums add, the lowest bad index wins. */
function reduceWorkgroup(clipped: string): string {
  return `sum_raw[lane] = raw;
  sum_clip[lane] = ${clipped};
  bad_index[lane] = first;
  bad_bits[lane] = bits;
  workgroupBarrier();
  for (var half = ${WG / 2}u; half > 0u; half = half >> 1u) {
    if (lane < half) {
      sum_raw[lane] = sum_raw[lane] + sum_raw[lane + half];
      sum_clip[lane] = sum_clip[lane] + sum_clip[lane + half];
      if (bad_index[lane + half] < bad_index[lane]) { bad_index[lane] = bad_index[lane + half]; bad_bits[lane] = bad_bits[lane + half]; }
    }
    workgroupBarrier();
  }`;
}

function statsProgram(clipValue: boolean): ProgramSpec {
  return {
    key: `train:grad-stats:${clipValue ? 'clip' : 'raw'}`,
    bindings: [{ name: 'grads', type: 'f32' }, { name: 'partials', type: 'u32' }],
    uniforms: [{ name: 'len', type: 'u32' }, { name: 'clip_value', type: 'f32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      declareReduction(b);
      b.main(`let lane = lid.x;
  let stride = nwg.x * ${WG}u;
  var raw = 0.0;
  var clipped = 0.0;
  var first = ${NONE}u;
  var bits = 0u;
  for (var i = gid.x; i < u.len; i = i + stride) {
    let g = grads[i];
    if (!is_finite(g) && first == ${NONE}u) { first = i; bits = bitcast<u32>(g); }
    raw = raw + g * g;
    ${clipValue ? 'let c = clamp(g, -u.clip_value, u.clip_value);\n    clipped = clipped + c * c;' : ''}
  }
  ${reduceWorkgroup(clipValue ? 'clipped' : 'raw')}
  if (lane == 0u) {
    let at = wid.x * 4u;
    partials[at] = bitcast<u32>(sum_raw[0]);
    partials[at + 1u] = bitcast<u32>(sum_clip[0]);
    partials[at + 2u] = bad_index[0];
    partials[at + 3u] = bad_bits[0];
  }`);
    },
    run: () => ({ workgroups: [1, 1, 1], uniforms: {} }),
  };
}

function finishProgram(clipNorm: boolean): ProgramSpec {
  return {
    key: `train:grad-finish:${clipNorm ? 'clip' : 'raw'}`,
    bindings: [{ name: 'partials', type: 'u32' }, { name: 'stats', type: 'u32' }],
    uniforms: [{ name: 'groups', type: 'u32' }, { name: 'max_norm', type: 'f32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      declareReduction(b);
      b.main(`let lane = lid.x;
  var raw = 0.0;
  var clipped = 0.0;
  var first = ${NONE}u;
  var bits = 0u;
  for (var k = lane; k < u.groups; k = k + ${WG}u) {
    raw = raw + bitcast<f32>(partials[k * 4u]);
    clipped = clipped + bitcast<f32>(partials[k * 4u + 1u]);
    let idx = partials[k * 4u + 2u];
    if (idx < first) { first = idx; bits = partials[k * 4u + 3u]; }
  }
  ${reduceWorkgroup('clipped')}
  if (lane == 0u) {
    let loss_bad = !is_finite(bitcast<f32>(stats[${STAT.loss}u]));
    let grad_bad = bad_index[0] != ${NONE}u;
    stats[${STAT.bad}u] = select(0u, 1u, loss_bad || grad_bad);
    stats[${STAT.lossBad}u] = select(0u, 1u, loss_bad);
    stats[${STAT.badIndex}u] = bad_index[0];
    stats[${STAT.badBits}u] = bad_bits[0];
    stats[${STAT.norm}u] = bitcast<u32>(sqrt(sum_raw[0]));
    ${clipNorm ? 'let coef = min(1.0, u.max_norm / (sqrt(sum_clip[0]) + 1e-6));' : 'let coef = 1.0;'}
    stats[${STAT.coef}u] = bitcast<u32>(coef);
  }`);
    },
    run: () => ({ workgroups: [1, 1, 1], uniforms: {} }),
  };
}

/** The per-element update of each optimizer kind: `p`, `g` (clipped) are set; slots are `flat[i + (2 + k) L]`. */
function updateCode(cfg: OptimizerConfig): { key: string; code: string } {
  const slot = (k: number) => `flat[i + ${2 + k}u * u.len]`;
  switch (cfg.kind) {
    case 'sgd': {
      const momentum = (cfg.momentum ?? 0) !== 0;
      const lines = ['var d = g + u.weight_decay * p;'];
      if (momentum) {
        lines.push(
          `let buf = select(u.momentum * ${slot(0)} + (1.0 - u.dampening) * d, d, u.first_step != 0u);`,
          `${slot(0)} = buf;`,
          cfg.nesterov ? 'd = d + u.momentum * buf;' : 'd = buf;',
        );
      }
      lines.push('flat[i] = p - u.lr * d;');
      return { key: `sgd${momentum ? ':momentum' : ''}${cfg.nesterov ? ':nesterov' : ''}`, code: lines.join('\n    ') };
    }
    case 'adam':
    case 'adamw': {
      const decoupled = cfg.kind === 'adamw';
      return {
        key: cfg.kind,
        code: [
          'var pi = p;',
          'var d = g;',
          decoupled ? 'pi = pi - u.lr * u.weight_decay * pi; // decoupled (AdamW)' : 'd = d + u.weight_decay * pi;',
          `let m = u.beta1 * ${slot(0)} + (1.0 - u.beta1) * d;`,
          `let v = u.beta2 * ${slot(1)} + (1.0 - u.beta2) * d * d;`,
          `${slot(0)} = m;`,
          `${slot(1)} = v;`,
          'flat[i] = pi - (u.lr * (m / u.bias1)) / (sqrt(v / u.bias2) + u.eps);',
        ].join('\n    '),
      };
    }
    case 'rmsprop': {
      const momentum = (cfg.momentum ?? 0) > 0;
      const centered = !!cfg.centered;
      const avgSlot = momentum ? 2 : 1;
      const lines = [
        'let d = g + u.weight_decay * p;',
        `let sq = u.alpha * ${slot(0)} + (1.0 - u.alpha) * d * d;`,
        `${slot(0)} = sq;`,
        'var denom_sq = sq;',
      ];
      if (centered) lines.push(`let avg = u.alpha * ${slot(avgSlot)} + (1.0 - u.alpha) * d;`, `${slot(avgSlot)} = avg;`, 'denom_sq = sq - avg * avg;');
      lines.push('let upd = d / (sqrt(denom_sq) + u.eps);');
      if (momentum) lines.push(`let buf = u.momentum * ${slot(1)} + upd;`, `${slot(1)} = buf;`, 'flat[i] = p - u.lr * buf;');
      else lines.push('flat[i] = p - u.lr * upd;');
      return { key: `rmsprop${momentum ? ':momentum' : ''}${centered ? ':centered' : ''}`, code: lines.join('\n    ') };
    }
  }
}

const STEP_UNIFORMS = [
  'lr', 'weight_decay', 'momentum', 'dampening', 'beta1', 'beta2', 'bias1', 'bias2', 'eps', 'alpha', 'clip_value',
].map((name) => ({ name, type: 'f32' as const }));

function stepProgram(cfg: OptimizerConfig, clip: GpuClip): ProgramSpec {
  const update = updateCode(cfg);
  const clipValue = clip.value !== undefined;
  const clipNorm = clip.norm !== undefined;
  return {
    key: `train:optimizer-step:${update.key}${clipValue ? ':clip-value' : ''}${clipNorm ? ':clip-norm' : ''}`,
    bindings: [{ name: 'flat', type: 'f32' }, { name: 'stats', type: 'u32' }],
    uniforms: [{ name: 'len', type: 'u32' }, { name: 'first_step', type: 'u32' }, ...STEP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.len')}
  // The NaN/Inf guard: a bad step changes nothing (the gradient section keeps the bad values for inspection).
  if (stats[${STAT.bad}u] != 0u) { return; }
  let i = index;
  let p = flat[i];
  var g = flat[i + u.len];
  ${clipValue ? 'g = clamp(g, -u.clip_value, u.clip_value);' : ''}
  ${clipNorm ? `g = g * bitcast<f32>(stats[${STAT.coef}u]);` : ''}
  ${clipValue || clipNorm ? 'flat[i + u.len] = g;' : ''}
  {
    ${update.code}
  }`);
    },
    run: () => ({ workgroups: [1, 1, 1], uniforms: {} }),
  };
}

/** The three programs of a step (exported for the WGSL snapshot tests). */
export function optimizerPrograms(config: OptimizerConfig, clip: GpuClip = {}): { stats: ProgramSpec; finish: ProgramSpec; step: ProgramSpec } {
  return { stats: statsProgram(clip.value !== undefined), finish: finishProgram(clip.norm !== undefined), step: stepProgram(config, clip) };
}

