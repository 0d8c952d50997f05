import { tfIdfParams, type TfIdfMode, type TfIdfParams } from '../../../ir/ops/text.js';
import type { Node } from '../../../ir/graph.js';
import type { HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';

/**
 * Text ops on WebGPU. Strings have no GPU storage (WGSL has no string type, see storage.ts): StringNormalizer,
 * StringConcat, StringSplit and RegexFullMatch have no kernel (the load-time check gives that reason, `refusals`)
 * and a string TfIdfVectorizer is refused when its plan is made. TfIdfVectorizer over int32/int64 tokens runs: one
 * invocation per output element (row, column) counts the pool n-grams of that column in its row (every start, and
 * for n >= 2 every skip 0..max_skip_count), then applies the mode (TF / IDF / TFIDF, a key).
 * The pool is a plan-time int32 table (it is an attribute):
 *   [0 .. cols]                 first entry of each column (entries sorted by column), cols + 1 values
 *   [entries_at + 3 e ..]       entry e: n, offset of its n tokens in this table, weight (f32 bits)
 *   [...]                       the tokens
 */

const WG = 64;

const NO_STRINGS = 'string tensors cannot live on the GPU (WGSL has no string type); run this model with the CPU backend';

function noStrings(node: Node): never {
  throw new GpuUnsupported(`${node.op} works on strings here, and ${NO_STRINGS}`);
}

/** The int32 table above, from the pool n-grams that can be counted. */
function poolTable(node: Node, p: TfIdfParams): { table: HostTensor; entriesAt: number } {
  const grams = [...p.grams].sort((a, b) => a.column - b.column);
  const entriesAt = p.columns + 1;
  const tokensAt = entriesAt + 3 * grams.length;
  const tokens = grams.reduce((s, g) => s + g.tokens.length, 0);
  const t = new Int32Array(tokensAt + tokens);
  const bits = new Int32Array(1);
  const f = new Float32Array(bits.buffer);
  let col = 0;
  let at = tokensAt;
  grams.forEach((g, e) => {
    while (col <= g.column) t[col++] = e;
    f[0] = g.weight;
    t.set([g.tokens.length, at, bits[0]!], entriesAt + 3 * e);
    for (const tok of g.tokens) {
      const v = tok as number;
      if (v < -(2 ** 31) || v >= 2 ** 31) throw new GpuUnsupported(`${node.op} pool token ${v} does not fit the GPU's 32-bit integers`);
      t[at++] = v;
    }
  });
  while (col <= p.columns) t[col++] = grams.length;
  return { table: { dtype: 'int32', shape: [t.length], data: t }, entriesAt };
}

function tfIdfProgram(mode: TfIdfMode, x: GpuTensorInfo, rows: number, len: number, p: TfIdfParams, entriesAt: number): ProgramSpec {
  const size = rows * p.columns;
  const value = mode === 'TF' ? 'f32(count)' : mode === 'IDF' ? 'select(0.0, w, count > 0u)' : 'f32(count) * w';
  return {
    key: `tfidf:${mode}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'pool', type: 'i32' }, { name: 'y', type: 'f32' }],
    uniforms: [
      { name: 'size', type: 'u32' }, { name: 'len', type: 'u32' }, { name: 'cols', type: 'u32' },
      { name: 'max_skip', type: 'u32' }, { name: 'entries_at', type: 'u32' },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let row_at = (index / u.cols) * u.len;
  let col = index % u.cols;
  var acc = 0.0;
  for (var e = u32(pool[col]); e < u32(pool[col + 1u]); e = e + 1u) {
    let entry = u.entries_at + 3u * e;
    let n = u32(pool[entry]);
    let tokens = u32(pool[entry + 1u]);
    let w = bitcast<f32>(pool[entry + 2u]);
    var count = 0u;
    // A 1-gram has no gaps to skip: each position counts once.
    let skips = select(u.max_skip, 0u, n == 1u);
    for (var s = 0u; s <= skips; s = s + 1u) {
      let step = s + 1u;
      let span = (n - 1u) * step;
      if (span >= u.len) { break; }
      for (var start = 0u; start + span < u.len; start = start + 1u) {
        var k = 0u;
        loop {
          if (k >= n) { break; }
          if (${b.load('x', 'row_at + start + k * step')} != pool[tokens + k]) { break; }
          k = k + 1u;
        }
        if (k == n) { count = count + 1u; }
      }
    }
    acc = acc + ${value};
  }
  ${b.store('y', 'index', 'acc')}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, len, cols: p.columns, max_skip: p.maxSkip, entries_at: entriesAt } };
    },
  };
}

const tfIdf: GpuKernel = {
  plan(node, [x]) {
    if (x!.dtype === 'string') noStrings(node);
    const p = tfIdfParams(node);
    const rows = x!.shape.length === 1 ? 1 : x!.shape[0]!;
    const len = x!.shape[x!.shape.length - 1]!;
    if (rows * p.columns === 0) return { calls: [] };
    const { table, entriesAt } = poolTable(node, p);
    return {
      calls: [{ program: tfIdfProgram(p.mode, x!, rows, len, p, entriesAt), tensors: [{ input: 0 }, { constant: 0 }, { output: 0 }] }],
      constants: [table],
    };
  },
};

export const kernels: Record<string, GpuKernel> = { TfIdfVectorizer: tfIdf };

/** Ops that can never have a WebGPU kernel, and why (the load-time error says it). */
export const refusals: Record<string, string> = Object.fromEntries(
  ['StringNormalizer', 'StringConcat', 'StringSplit', 'RegexFullMatch'].map((op) => [op, `${op} works on strings only, and ${NO_STRINGS}`]),
);
