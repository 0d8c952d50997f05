import type { DType } from '../../../ir/dtype.js';
import type { Node } from '../../../ir/graph.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuTensorInfo, type KernelEnv, type KernelPlan, type ProgramSpec, type TensorSlot, type Uniforms } from '../program.js';
import type { BindingDecl, ShaderBuilder, UniformDecl } from '../wgsl/builder.js';
import { activationExpr, activationFromNode, type Activation } from './epilogue.js';
import { dotHelpers, int32Constant, int8Offset, planQuantDotPath, type QuantDotPath } from './quant-dot.js';
import type { ConvShape, MatMulShape } from './quant-matmul.js';

/**
 * ConvInteger and MatMulInteger with constant weights (the quantizer's int8-dynamic files), planned by
 * quant-matmul.ts: the weights packed at plan time four int8-domain codes per u32 (packRows, kept in the session's
 * weight store), each output channel's sum of codes and zero point in a host-computed table (channelTable), and
 * register-blocked kernels with exact i32 accumulators (packedConvProgram, packedMatmulProgram).
 *
 * The same kernels run the fused dynamic-int8 chains (fuse-dynamic-int8.ts: ConvInteger | MatMulInteger -> Cast ->
 * Mul(x_scale * w_scale) [-> Add(bias)] [-> Relu] as one node) with a float epilogue instead of the i32 store
 * (ScaledOutput): y = relu?(f32(acc) * (x_scale * w_scale[c]) + bias[c]), x_scale read from the
 * DynamicQuantizeLinear's 1-element output, w_scale and bias from one f32 table built at plan time.
 */

const WG = 64;

/** `fn <name>(i: u32) -> i32`: element i of a quantized binding moved into the int8 domain. */
export function int8Loader(b: ShaderBuilder, name: string, dtype: DType): string {
  b.helper(`fn ${name}_i8(i: u32) -> i32 {
  return i32(${b.load(name, 'i')}) - ${int8Offset(dtype)};
}`);
  return `${name}_i8`;
}

interface PackedRows {
  /** rows x T x C4 u32 words: word (r, t, c4) packs the int8-domain codes of lanes 4 c4 .. 4 c4 + 3 (0 past L). */
  words: HostTensor;
  /** Each row's sum of its int8-domain codes (padding lanes are 0). */
  sums: Int32Array;
}

/** Packed weights per initializer and layout: every plan of a session returns the same tensor (one weight-store upload). */
const packCache = new WeakMap<HostTensor, Map<string, PackedRows>>();

/**
 * Packs a constant weight tensor as rows x T segments of ceil(L / 4) words, four codes per u32 (lane 0 in the low
 * byte), uint8 moved into the int8 domain by -128 as quant-dot.ts does; at(r, t, l) is the element's index in w
 * (`layout` names it in the cache key).
 * A conv packs tap-major (T taps of its Cg input channels), a matmul one segment of K (T = 1).
 */
export function packRows(w: HostTensor, layout: string, rows: number, T: number, L: number, at: (r: number, t: number, l: number) => number): PackedRows {
  const key = `${layout}:${rows}:${T}:${L}`;
  let byKey = packCache.get(w);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const v = tensorToNumbers(w);
  const off = int8Offset(w.dtype);
  const L4 = Math.ceil(L / 4);
  const words = new Uint32Array(rows * T * L4);
  const sums = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < T; t++) {
      for (let l = 0; l < L; l++) {
        const q = v[at(r, t, l)]! - off;
        sums[r]! += q;
        words[(r * T + t) * L4 + (l >> 2)]! |= (q & 0xff) << ((l & 3) * 8);
      }
    }
  }
  const packed = { words: hostTensor('uint32', [words.length], words), sums };
  if (!byKey) packCache.set(w, (byKey = new Map()));
  byKey.set(key, packed);
  return packed;
}

/**
 * The i32 table [wsum[C], zw[C]] of the packed kernels: each output channel's sum of weight codes and its weight zero
 * point, both in the int8 domain; zw0 when every zero point is 0 there (the quantizer's uint8 weights with zero point
 * 128): the kernels then skip the sum of x.
 */
export function channelTable(packed: PackedRows, C: number, zw: GpuTensorInfo | undefined, dtype: DType): { table: HostTensor; zw0: boolean } {
  const z = zw ? tensorToNumbers(zw.value!) : new Float64Array(1); // no zero point: 0 in w's type
  const data = new Int32Array(2 * C);
  data.set(packed.sums);
  for (let c = 0; c < C; c++) data[C + c] = z[z.length === 1 ? 0 : c]! - int8Offset(dtype);
  return { table: int32Constant([2 * C], data), zw0: data.subarray(C).every((v) => v === 0) };
}

/** Pixels per invocation of the packed conv. */
const CONV_PB = 4;
/** Columns per invocation of the packed matmul. */
const MATMUL_CB = 8;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The float epilogue of a fused dynamic-int8 chain. The table `sb` holds w_scale (one value, or one per channel)
 * then the bias (likewise); the strides are 1 per channel, 0 per tensor. The arithmetic is the unfused ops', in
 * their order, each rounded to f32 as they round it: the scale Mul's product x_scale * w_scale[c], the Cast's
 * f32(acc), the output Mul's f32(acc) * scale, then the Add's + bias[c] (IEEE products and sums are commutative,
 * so operand order does not change a bit). An implementation that contracts the multiply and the add into an fma
 * (SPIR-V allows it without NoContraction, which WGSL cannot ask for) would round once where the unfused plan
 * rounds twice; SwiftShader does not (tests/webgpu/dynamic-int8-fusion.test.ts checks bit equality).
 * Relu, the one activation the pass folds, is a uniform flag rather than part of the pipeline key: SwiftShader takes
 * seconds to compile each unrolled 4 x 16 kernel, and a key per activation compiled Fashion's conv2 and conv3 (and
 * fc1 and fc2) twice (plan time 10.2 and 12.2 s against 8.5 and 6.7 s unfused, loaded machine).
 */
export interface ScaledOutput {
  /** x_scale: the DynamicQuantizeLinear's 1-element output. */
  xs: GpuTensorInfo;
  scaleStride: number;
  /** Present when the chain adds a bias; `offset` is its start in the table. */
  bias: { stride: number; offset: number } | undefined;
  relu: boolean;
}

const SCALED_UNIFORMS = ['s_stride', 'b_stride', 'b_off', 'relu'].map((name) => ({ name, type: 'u32' as const }));

/** Relu as the elementwise kernel computes it (max_nan(v, 0)), so a fused Relu rounds as the unfused one. */
const RELU: Activation = { op: 'Relu', variant: '', params: {} };

/**
 * What the output adds to a packed program: its cache-key part, the bindings of x_scale (after x's zero point) and
 * of the table (before y), uniforms and their values; nothing for the i32 store.
 */
function outputLayout(so: ScaledOutput | undefined): { key: string; xs: BindingDecl[]; sb: BindingDecl[]; uniforms: UniformDecl[]; values: Uniforms } {
  if (!so) return { key: '', xs: [], sb: [], uniforms: [], values: {} };
  return {
    key: `:scaled${so.bias ? ':bias' : ''}`,
    xs: [{ name: 'xs', type: so.xs.storage }],
    sb: [{ name: 'sb', type: 'f32' }],
    uniforms: SCALED_UNIFORMS,
    values: { s_stride: so.scaleStride, b_stride: so.bias?.stride ?? 0, b_off: so.bias?.offset ?? 0, relu: so.relu ? 1 : 0 },
  };
}

/**
 * Per-block declarations of the float epilogue, before the stores: channel c0 + r's scale sc<r> (and bias bs<r>),
 * read once for the invocation's pixels or rows ('' without one: the i32 kernels' WGSL is unchanged).
 */
function scaledHeader(s: ShaderBuilder, so: ScaledOutput | undefined, R: number[]): string {
  if (!so) return '';
  const ch = (r: number) => `min(c0 + ${r}u, u.C - 1u)`;
  return `let xs0 = ${s.loadAs('xs', '0u', 'f32')};
  ${R.map((r) => `let sc${r} = xs0 * sb[${ch(r)} * u.s_stride];${so.bias ? ` let bs${r} = sb[u.b_off + ${ch(r)} * u.b_stride];` : ''}`).join('\n  ')}
  `;
}

/** The statement storing accumulator `acc` of block channel r at `index`: as i32, or through the float epilogue. */
function storeOut(s: ShaderBuilder, so: ScaledOutput | undefined, r: number, index: string): string {
  if (!so) return s.store('y', index, 'acc');
  const v = so.bias ? `f32(acc) * sc${r} + bs${r}` : `f32(acc) * sc${r}`;
  return `let v = ${v};
    ${s.store('y', index, `select(v, ${activationExpr(s, RELU, 'v', 'f32')}, u.relu != 0u)`)}`;
}

/**
 * Output channels per invocation of the packed conv: 16 for ungrouped convs of 32 channels or more (Fashion conv2/3
 * ran about 0.7x the time of 8 on SwiftShader, noisy), else 8; for a grouped conv the most of 8, 4, 2, 1 dividing
 * its group's channels, so that a block never straddles two groups.
 */
function convBlock(g: ConvShape): number {
  const Mg = g.M / g.group;
  if (g.group === 1) return g.M >= 32 ? 16 : 8;
  return [8, 4, 2, 1].find((b) => Mg % b === 0)!;
}

/**
 * The exact accumulator of channel m from a dot sum d and x's sum sx: sum (x - zx)(w - zw) = sum x w - zx sum w
 * - zw sum x + K zx zw, sum w and zw from the table (channelTable); without weight zero points the last two vanish.
 */
function packedAcc(d: string, m: string, zw0: boolean, sx: string): string {
  const base = `${d} - zpx * tab[${m}]`;
  return zw0 ? base : `${base} - tab[u.C + ${m}] * ${sx} + i32(u.K) * zpx * tab[u.C + ${m}]`;
}

/**
 * ConvInteger with packed constant weights: each invocation computes CONV_PB pixels x cb output channels of one image
 * and group, with one i32 accumulator per pair (unrolled registers). The reduction runs over taps, then four input
 * channels at a time: each pixel's four lanes are read once at the tap's offset (taps[p, t] < 0 is padding, read as
 * x's zero point) and, on the packed path, packed once for the cb channels; each weight word is read once for the
 * CONV_PB pixels (unpacked once on the unpacked path). Lanes past Cg are 0 in x and w. Pixels past P and channels
 * past M compute on clamped indices and are not stored. With fewer than 4 input channels per group (`flat`, a first
 * layer: Cg = 1 would leave 3 of 4 lanes empty per tap) the words run over k = c T + t instead, each lane's channel
 * and tap computed once per word for the CONV_PB pixels. With `so` the stores go through the float epilogue
 * (ScaledOutput) into a float32 y.
 */
export function packedConvProgram(x: GpuTensorInfo, zx: GpuTensorInfo, y: GpuTensorInfo, g: ConvShape, path: QuantDotPath, zw0: boolean, so?: ScaledOutput): ProgramSpec {
  const cb = convBlock(g);
  const pb = CONV_PB;
  const Cg = g.C / g.group;
  const K = Cg * g.T;
  // flat: Cg < 4, w packed over k = c T + t (see convInteger), one loop over ceil(K / 4) words.
  const flat = Cg < 4;
  const C4 = flat ? Math.ceil(K / 4) : Math.ceil(Cg / 4);
  const cblocks = Math.ceil(g.M / cb);
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * cblocks * pblocks;
  const I = range(pb);
  const R = range(cb);
  const out = outputLayout(so);
  return {
    key: `quant-conv-packed:${x.dtype}:${zx.dtype}:${path}:cb${cb}:pb${pb}${zw0 ? ':zw0' : ''}${flat ? ':flat' : ''}${out.key}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'zx', type: zx.storage }, ...out.xs, { name: 'w', type: 'u32' }, { name: 'taps', type: 'i32' },
      { name: 'tab', type: 'i32' }, ...out.sb, { name: 'y', type: y.storage },
    ],
    uniforms: [...['size', 'Cin', 'Cg', 'C', 'Mg', 'P', 'Q', 'T', 'C4', 'K', 'cblocks', 'pblocks'].map((name) => ({ name, type: 'u32' as const })), ...out.uniforms],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      const lane = flat
        ? (i: number, j: number) => `select(0, select(zpx, ${lx}(x_base + q${j} + u32(max(o${i}_${j}, 0))), o${i}_${j} >= 0), k${j} < u.K)`
        : (i: number, j: number) => `select(0, select(zpx, ${lx}(xo${i} + q${j}), ok${i}), ci + ${j}u < u.Cg)`;
      const lanes = (i: number) => `vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')})`;
      const sumX = (i: number, v: string) => (zw0 ? '' : ` sx${i} = sx${i} + ${v};`);
      const body = path === 'packed'
        ? `${I.map((i) => `let px${i} = pack_i8(${lanes(i)});${sumX(i, `dot4_i8(px${i}, 0x01010101u)`)}`).join('\n      ')}
      ${R.map((r) => `let pw${r} = w[wr${r} + wt + c4];
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot4_i8(px${i}, pw${r});`).join(' ')}`).join('\n      ')}`
        : `${I.map((i) => `let xv${i} = ${lanes(i)};${sumX(i, `dot(xv${i}, vec4<i32>(1))`)}`).join('\n      ')}
      ${R.map((r) => `let wv${r} = unpack_i8(w[wr${r} + wt + c4]);
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot(xv${i}, wv${r});`).join(' ')}`).join('\n      ')}`;
      const stores = I.flatMap((i) => R.map((r) => `if (p0 + ${i}u < u.P && c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    let acc = ${packedAcc(`d${i}_${r}`, 'm', zw0, `sx${i}`)};
    ${storeOut(s, so, r, `(n * u.C + m) * u.P + p0 + ${i}u`)}
  }`));
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let c0 = ((index / u.pblocks) % u.cblocks) * ${cb}u;
  let n = index / (u.pblocks * u.cblocks);
  let x_base = (n * u.Cin + (c0 / u.Mg) * u.Cg) * u.Q;
  let zpx = i32(${s.load('zx', '0u')}) - ${int8Offset(x.dtype)};
  ${I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * ${flat ? 'u.C4' : 'u.T * u.C4'};`).join('\n  ')}
  ${zw0 ? '' : I.map((i) => `var sx${i} = 0;`).join(' ')}
  ${I.map((i) => R.map((r) => `var d${i}_${r} = 0;`).join(' ')).join('\n  ')}
  ${flat ? `// Lane j of word c4 is k = 4 c4 + j: input channel k / T at tap k % T (lanes past K are 0).
  let wt = 0u;
  for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
    ${range(4).map((j) => `let k${j} = c4 * 4u + ${j}u;
    let kc${j} = min(k${j}, u.K - 1u) / u.T;
    let q${j} = kc${j} * u.Q;
    let kt${j} = min(k${j}, u.K - 1u) - kc${j} * u.T;
    ${I.map((i) => `let o${i}_${j} = ${s.load('taps', `pp${i} + kt${j}`)};`).join(' ')}`).join('\n    ')}
    ${body}
  }` : `for (var t = 0u; t < u.T; t = t + 1u) {
    ${I.map((i) => `let off${i} = ${s.load('taps', `pp${i} + t`)};
    let ok${i} = off${i} >= 0;
    let xo${i} = x_base + u32(max(off${i}, 0));`).join('\n    ')}
    let wt = t * u.C4;
    for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
      let ci = c4 * 4u;
      ${range(4).map((j) => `let q${j} = min(ci + ${j}u, u.Cg - 1u) * u.Q;`).join('\n      ')}
      ${body}
    }
  }`}
  ${scaledHeader(s, so, R)}${stores.join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, Cin: g.C, Cg, C: g.M, Mg: g.M / g.group, P: g.P, Q: g.Q, T: g.T, C4, K, cblocks, pblocks, ...out.values },
    }),
  };
}

/**
 * MatMulInteger with a packed constant 2-D b: a's rows (batch dims flattened) times b's columns, MATMUL_CB columns
 * per invocation: a's four values of a word are loaded (and packed) once for the MATMUL_CB columns. Columns past N
 * read the last one and are not stored. a's zero point is per tensor or per row of a's last matrix (za_stride).
 * With `so` the stores go through the float epilogue (ScaledOutput) into a float32 y.
 */
export function packedMatmulProgram(
  a: GpuTensorInfo, za: GpuTensorInfo, y: GpuTensorInfo, rows: number, g: MatMulShape, zaStride: number, path: QuantDotPath, zw0: boolean, so?: ScaledOutput,
): ProgramSpec {
  const cb = MATMUL_CB;
  const blocks = Math.ceil(g.N / cb);
  const size = rows * blocks;
  const R = range(cb);
  const out = outputLayout(so);
  return {
    key: `quant-matmul-packed:${a.dtype}:${za.dtype}:${path}:cb${cb}${zw0 ? ':zw0' : ''}${out.key}`,
    bindings: [
      { name: 'a', type: a.storage }, { name: 'za', type: za.storage }, ...out.xs, { name: 'w', type: 'u32' }, { name: 'tab', type: 'i32' }, ...out.sb,
      { name: 'y', type: y.storage },
    ],
    uniforms: [...['size', 'M', 'C', 'K', 'K4', 'blocks', 'za_stride'].map((name) => ({ name, type: 'u32' as const })), ...out.uniforms],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const la = int8Loader(s, 'a', a.dtype);
      const sumX = zw0 ? '' : `\n    sx = sx + ${path === 'packed' ? 'dot4_i8(pa, 0x01010101u)' : 'dot(va, vec4<i32>(1))'};`;
      s.main(`${s.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${cb}u;
  let row = index / u.blocks;
  let a_row = row * u.K;
  let zpx = i32(${s.load('za', '(row % u.M) * u.za_stride')}) - ${int8Offset(a.dtype)};
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * u.K4;`).join('\n  ')}
  ${zw0 ? '' : 'var sx = 0;'}
  ${R.map((r) => `var d${r} = 0;`).join(' ')}
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    let k = k4 * 4u;
    let va = vec4<i32>(${range(4).map((j) => `select(0, ${la}(a_row + min(k + ${j}u, u.K - 1u)), k + ${j}u < u.K)`).join(', ')});${path === 'packed' ? '\n    let pa = pack_i8(va);' : ''}${sumX}
    ${R.map((r) => path === 'packed' ? `d${r} = d${r} + dot4_i8(pa, w[wr${r} + k4]);` : `d${r} = d${r} + dot(va, unpack_i8(w[wr${r} + k4]));`).join('\n    ')}
  }
  ${scaledHeader(s, so, R)}${R.map((r) => `if (c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    let acc = ${packedAcc(`d${r}`, 'm', zw0, 'sx')};
    ${storeOut(s, so, r, 'row * u.C + m')}
  }`).join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, M: g.M, C: g.N, K: g.K, K4: Math.ceil(g.K / 4), blocks, za_stride: zaStride, ...out.values },
    }),
  };
}

// ---- plans (quant-matmul.ts's kernels call these) ----

/** A missing zero point: one constant 0 (i32). */
const ZERO: GpuTensorInfo = { dtype: 'int32', shape: [1], storage: 'i32' };

/** A per-row zero point's stride: 1 for a 1-D tensor, 0 for a scalar. */
const stride = (t: GpuTensorInfo | undefined) => (t && sizeOfShape(t.shape) > 1 ? 1 : 0);

/** A fused chain's float epilogue and its f32 table, as scaledOutput plans them. */
export interface Scaled {
  out: ScaledOutput;
  /** f32 [w_scale (1 or C values), bias (1 or C values, when given)]. */
  table: HostTensor;
}

/**
 * The float epilogue of DYNAMIC_CONV / DYNAMIC_MATMUL over C output channels: inputs 4, 5, 6 are x_scale (one
 * float32 value, read on the GPU), w_scale and the optional bias (float32 constants of 1 or C values, gathered into
 * one table), attribute `activation` the fused Relu (the only activation the kernels take).
 */
export function scaledOutput(node: Node, inputs: (GpuTensorInfo | undefined)[], y: GpuTensorInfo, C: number): Scaled {
  const [xs, ws, bias] = [inputs[4], inputs[5], inputs[6]];
  if (!xs || xs.dtype !== 'float32' || sizeOfShape(xs.shape) !== 1) throw new GpuUnsupported(`${node.op}: x_scale must be one float32 value`);
  if (y.dtype !== 'float32') throw new GpuUnsupported(`${node.op}: the output must be float32, not ${y.dtype}`);
  const values = (t: GpuTensorInfo | undefined, what: string): Float32Array => {
    if (!t?.value || t.dtype !== 'float32') throw new GpuUnsupported(`${node.op}: ${what} must be a float32 constant`);
    const n = sizeOfShape(t.shape);
    if (n !== 1 && n !== C) throw new GpuUnsupported(`${node.op}: ${what} has ${n} values for ${C} channels`);
    return t.value.data as Float32Array;
  };
  const s = values(ws, 'w_scale');
  const b = bias ? values(bias, 'bias') : new Float32Array(0);
  const table = new Float32Array(s.length + b.length);
  table.set(s);
  table.set(b, s.length);
  const act = activationFromNode(node);
  if (act && act.op !== 'Relu') throw new GpuUnsupported(`${node.op}: activation '${act.op}' is not fused (Relu is)`);
  const out: ScaledOutput = {
    xs,
    scaleStride: s.length > 1 ? 1 : 0,
    bias: bias ? { stride: b.length > 1 ? 1 : 0, offset: s.length } : undefined,
    relu: !!act,
  };
  return { out, table: hostTensor('float32', [table.length], table) };
}

/**
 * MatMulInteger with a constant 2-D b (the quantizer's weights): packed at plan time, several columns per
 * invocation; i32 out, or with `scaled` the float epilogue of a fused dynamic-int8 chain (input 4 is x_scale).
 */
export function packedMatmulPlan(inputs: (GpuTensorInfo | undefined)[], y: GpuTensorInfo, g: MatMulShape, env: KernelEnv, scaled?: Scaled): KernelPlan {
  const [a, b] = inputs as [GpuTensorInfo, GpuTensorInfo];
  const packed = packRows(b.value!, 'matmul', g.N, 1, g.K, (n, _t, k) => k * g.N + n);
  const table = channelTable(packed, g.N, inputs[3], b.dtype);
  const rows = sizeOfShape(a.shape) / g.K;
  const za = inputs[2];
  const program = packedMatmulProgram(a, za ?? ZERO, y, rows, g, stride(za), planQuantDotPath(env), table.zw0, scaled?.out);
  const zero = scaled ? 3 : 2;
  const tensors: TensorSlot[] = [
    { input: 0 }, za ? { input: 2 } : { constant: zero }, ...(scaled ? [{ input: 4 }] : []), { constant: 0 }, { constant: 1 }, ...(scaled ? [{ constant: 2 }] : []), { output: 0 },
  ];
  return {
    calls: [{ program, tensors }],
    constants: [packed.words, table.table, ...(scaled ? [scaled.table] : []), ...(za ? [] : [int32Constant([1], new Int32Array(1))])],
    sharedConstants: [0],
    unboundInputs: scaled ? [1, 3, 5, 6] : [1, 3],
  };
}

/**
 * ConvInteger with constant weights (the quantizer's int8-dynamic convs): packed tap-major at plan time,
 * register-blocked kernel; i32 out, or with `scaled` the float epilogue of a fused dynamic-int8 chain (input 4 is
 * x_scale).
 */
export function packedConvPlan(inputs: (GpuTensorInfo | undefined)[], y: GpuTensorInfo, g: ConvShape, env: KernelEnv, scaled?: Scaled): KernelPlan {
  const [x, w] = inputs as [GpuTensorInfo, GpuTensorInfo];
  const Cg = g.C / g.group;
  // Fewer than 4 input channels per group (a first layer): whole K = Cg T in w's own order, no padding lanes per tap.
  const packed = Cg < 4 ? packRows(w.value!, 'conv-flat', g.M, 1, Cg * g.T, (m, _t, k) => m * Cg * g.T + k) : packRows(w.value!, 'conv', g.M, g.T, Cg, (m, t, c) => (m * Cg + c) * g.T + t);
  const table = channelTable(packed, g.M, inputs[3], w.dtype);
  const zx = inputs[2];
  const program = packedConvProgram(x, zx ?? ZERO, y, g, planQuantDotPath(env), table.zw0, scaled?.out);
  const zero = scaled ? 4 : 3;
  const tensors: TensorSlot[] = [
    { input: 0 }, zx ? { input: 2 } : { constant: zero }, ...(scaled ? [{ input: 4 }] : []), { constant: 0 }, { constant: 1 }, { constant: 2 },
    ...(scaled ? [{ constant: 3 }] : []), { output: 0 },
  ];
  return {
    calls: [{ program, tensors }],
    constants: [packed.words, int32Constant([g.taps.length], g.taps), table.table, ...(scaled ? [scaled.table] : []), ...(zx ? [] : [int32Constant([1], new Int32Array(1))])],
    sharedConstants: [0],
    unboundInputs: scaled ? [1, 3, 5, 6] : [1, 3],
  };
}
