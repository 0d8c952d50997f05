import type { DType } from '../../../ir/dtype.js';
import { attrString, type Node } from '../../../ir/graph.js';
import { GpuUnsupported, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { int8Offset, scalarTypeOf } from './quant-dot.js';

/**
 * What the int8 conv kernels share (kernels/qdq-gemm.ts: direct, tiled and matmul forms; kernels/qdq-depthwise.ts):
 * the view of a c4 value, the requantizing epilogue and its c4 store, and the exact accumulator. The file comment of
 * qdq-gemm.ts describes the kernels, the parameter table they read and the c4 layout.
 */

export const WG = 64;

/**
 * The packed int8 layout "c4" of a QdqConv's x or y (qdq-layout.ts; docs/quantization.md): a uint32 value of shape
 * [N, ceil(C / 4), ...spatial], word (n, c4, s) holding channel 4 c4 + j in byte j as its int8-domain code, bytes past
 * C holding the zero point. The node's `x_layout` / `y_layout` attribute says 'c4' and `x_qtype` / `y_qtype` give the
 * quantized type; undefined = one code per word, of the value's own dtype.
 */
export function c4Type(node: Node, which: 'x' | 'y'): DType | undefined {
  if (attrString(node, `${which}_layout`) !== 'c4') return undefined;
  const t = attrString(node, `${which}_qtype`);
  if (t !== 'int8' && t !== 'uint8') throw new GpuUnsupported(`${node.op}: ${which}_layout c4 needs ${which}_qtype int8 or uint8, not ${t}`);
  return t;
}

/** The kernels' view of x and y: dtype the quantized type (shape logical), storage the value's, and whether it is c4. */
export interface Io {
  x: GpuTensorInfo;
  y: GpuTensorInfo;
  xc4: boolean;
  yc4: boolean;
}

export const layoutKey = (io: Io) => `${io.xc4 ? ':xc4' : ''}${io.yc4 ? ':yc4' : ''}`;

/**
 * The statements storing one c4 word of y at y[out]: channels m0 .. m0 + 3 of one pixel, each requantized as
 * epilogueTail does (the same f32 value, so the same code) and moved into the int8 domain; lanes past C hold y's zero
 * point. `acc(j)` declares lane j's `acc` with `m` in scope.
 */
export function storeC4(b: Parameters<ProgramSpec['source']>[0], y: DType, m0: string, out: string, acc: (j: number) => string): string {
  const off = int8Offset(y);
  return `{
    var q4 = vec4<i32>(i32(params[3]) - ${off});
    ${range(4).map((j) => `if (${m0} + ${j}u < u.C) {
      let m = ${m0} + ${j}u;
      ${acc(j)}
      let v = f32(acc) * params[4u + m] + params[4u + 2u * u.C + m];
      q4[${j}] = i32(clamp(round(v) + params[3], u.q_lo, u.q_hi)) - ${off};
    }`).join('\n    ')}
    ${b.store('y', out, 'pack_i8(q4)')}
  }`;
}

/** The statements after `acc` (i32, exact) is known: requantize or dequantize it and store it in y[out]. */
export function epilogueTail(b: Parameters<ProgramSpec['source']>[0], y: DType, c: string, out: string): string {
  if (y === 'float32') {
    return `let v = f32(acc) * params[0] * params[4u + ${c}] + params[4u + 2u * u.C + ${c}];
      ${b.store('y', out, 'clamp(v, u.q_lo, u.q_hi)')}`;
  }
  return `let v = f32(acc) * params[4u + ${c}] + params[4u + 2u * u.C + ${c}];
      ${b.store('y', out, `${scalarTypeOf(y)}(clamp(round(v) + params[3], u.q_lo, u.q_hi))`)}`;
}

/**
 * The exact accumulator of channel `c` from the dot loop's sums: sum (x - zx)(w - zw) = sum x w - zx sum w - zw sum x
 * + K zx zw, with sum w from the table (weightSums). When every zw is 0 (zw0: symmetric weights, the quantizer's
 * default) the last two terms vanish and the kernels do not sum x at all.
 */
export function accExpr(dxw: string, c: string, zw0: boolean, sx: string): string {
  const base = `${dxw} - zpx * i32(params[4u + 3u * u.C + ${c}])`;
  return zw0 ? base : `${base} - zpw * ${sx} + i32(u.K) * zpx * zpw`;
}

export const CLAMP_UNIFORMS = [{ name: 'q_lo', type: 'f32' as const }, { name: 'q_hi', type: 'f32' as const }];

export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * unpack_u8(word): a c4 word's four int8-domain codes as uint8 values, code + 128 (0..255). The kernels that multiply
 * unpacked codes take x this way, with x's zero point + 128: every (x - zx) is unchanged, so are the exact sums. On
 * SwiftShader the products of a zero-extended x and a sign-extended w ran faster than of two sign-extended codes:
 * mobilenet_v2's int8 1x1 convs 351.7 / 353.1 ms against 397.7 / 401.9, its depthwise convs 114.5 / 117.8 against
 * 121.4 / 133.0 (bench/qdq-tiles.bench.ts, two plans of each in one process; docs/quantization.md). Presumably LLVM's
 * x86 backend then multiplies 16-bit halves (pmaddwd) where it otherwise needs full 32-bit products (pmulld).
 */
export function unpackU8(s: Parameters<ProgramSpec['source']>[0]): void {
  s.helper(`fn unpack_u8(a: u32) -> vec4<i32> {
  let b = a ^ 0x80808080u;
  return vec4<i32>(i32(b & 0xffu), i32((b >> 8u) & 0xffu), i32((b >> 16u) & 0xffu), i32(b >> 24u));
}`);
}
