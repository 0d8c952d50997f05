import { EdgeKitError } from '../runtime/errors.js';
import { attrInt, attrTensor, type Graph, type Node } from '../runtime/ir/graph.js';
import { toFloat16 } from './codecs.js';
import { fresh, GraphEditor } from './editor.js';
import type { ResolvedOptions } from './options.js';
import { selectNodes, type KeptNode } from './plan.js';
import type { LayerPair } from './report.js';

/**
 * float16: every float32 weight and activation becomes float16 (half the weight bytes); with keepIoTypes (the
 * default) the model's float32 inputs and outputs stay float32 through a Cast after each input and before each
 * output, as onnxconverter-common's convert_float_to_float16(keep_io_types=True) does. Runtimes then compute in
 * float16 where they can: EdgeKit's WebGPU backend stores the tensors as f16 and, without 'shader-f16', unpacks
 * them to f32 in registers (runtime/backends/webgpu/storage.ts).
 *
 * Nodes stay float32, with Casts around them, when the caller excludes them, when their op is in KEEP_FLOAT, or
 * when the runtime's schema refuses float16 for them (found by shape inference, then retried without the node).
 * Inputs that the spec types as float32 whatever the data (Resize's roi and scales) are never converted.
 */

/** Ops left in float32: random generators (their dtype attribute picks the output type; float16 noise is coarse). */
const KEEP_FLOAT = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial']);
const FLOAT = 1;
const FLOAT16 = 10;

const fp32Slot = (n: Node, i: number) => (n.op === 'Resize' || n.op === 'Upsample') && i >= 1;

export function rewriteFloat16(src: Graph, opts: ResolvedOptions): { graph: Graph; layers: LayerPair[]; kept: KeptNode[] } {
  const blocked = new Map<string, string>();
  for (let attempt = 0; ; attempt++) {
    try {
      const r = tryFloat16(src, opts, blocked);
      return { ...r, kept: [...r.kept, ...[...blocked].map(([node, reason]) => ({ node, op: src.nodes.find((n) => n.name === node)!.op, reason }))] };
    } catch (e) {
      const culprit = e instanceof EdgeKitError ? src.nodes.find((n) => n.name && !blocked.has(n.name) && e.message.includes(`'${n.name}'`)) : undefined;
      if (!culprit || attempt > src.nodes.length) throw e;
      blocked.set(culprit.name, `kept float32: the runtime refuses float16 here (${e instanceof Error ? e.message : String(e)})`);
    }
  }
}

function tryFloat16(src: Graph, opts: ResolvedOptions, blocked: Map<string, string>): { graph: Graph; layers: LayerPair[]; kept: KeptNode[] } {
  const { selected, kept } = selectNodes(src, (n) => !KEEP_FLOAT.has(n.op) && !blocked.has(n.name), { ...opts, keepFirstLast: false }, "mode 'float16'");
  const half = new Set(selected);
  const is32 = (v: string) => !!v && src.values[v]?.dtype === 'float32';
  const readers = new Map<string, { n: Node; i: number }[]>();
  const producer = new Map<string, Node>();
  for (const n of src.nodes) {
    n.inputs.forEach((v, i) => v && readers.set(v, [...(readers.get(v) ?? []), { n, i }]));
    for (const o of n.outputs) if (o) producer.set(o, n);
  }
  const wantsHalf = (n: Node, i: number) => half.has(n) && !fp32Slot(n, i);
  const ioHalf = !opts.keepIoTypes;
  // Where each float32 value lives after conversion.
  const home = new Map<string, 'float16' | 'float32'>();
  for (const [v, info] of Object.entries(src.values)) {
    if (info.dtype !== 'float32') continue;
    const p = producer.get(v);
    if (p) home.set(v, half.has(p) ? 'float16' : 'float32');
    else if (v in src.initializers) home.set(v, (readers.get(v) ?? []).every((r) => wantsHalf(r.n, r.i)) ? 'float16' : 'float32');
    else home.set(v, ioHalf ? 'float16' : 'float32');
  }
  const ed = new GraphEditor(src);
  const g = ed.graph;
  for (const [v, h] of home) if (h === 'float16' && v in src.initializers) g.initializers[v] = toFloat16(src.initializers[v]!);
  if (ioHalf) g.inputs = g.inputs.map((i) => (i.dtype === 'float32' ? { ...i, dtype: 'float16' } : i));

  const casts = new Map<string, string>();
  const castTo = (v: string, to: 'float16' | 'float32'): string => {
    const key = `${v}|${to}`;
    let c = casts.get(key);
    if (!c) {
      c = fresh(g, `${v}_${to === 'float16' ? 'fp16' : 'fp32'}`);
      ed.addNode({ name: fresh(g, `${v}_Cast_${to}`), op: 'Cast', domain: '', inputs: [v], outputs: [c], attrs: { to: { type: 'int', value: to === 'float16' ? FLOAT16 : FLOAT } } }, v);
      casts.set(key, c);
    }
    return c;
  };
  for (const n0 of src.nodes) {
    const n = ed.node(n0);
    n.inputs = n.inputs.map((v, i) => {
      if (!is32(v)) return v;
      const need = wantsHalf(n0, i) ? 'float16' : 'float32';
      return home.get(v) === need ? v : castTo(v, need);
    });
    if (!half.has(n0)) continue;
    // Ops whose attribute names the float type they make.
    if ((n.op === 'Cast' || n.op === 'EyeLike') && attrInt(n, n.op === 'Cast' ? 'to' : 'dtype') === FLOAT) n.attrs[n.op === 'Cast' ? 'to' : 'dtype'] = { type: 'int', value: FLOAT16 };
    const value = attrTensor(n, 'value');
    if (n.op === 'ConstantOfShape' && value?.dtype === 'float32') n.attrs.value = { type: 'tensor', value: toFloat16(value) };
  }
  // Outputs: a float16 value the caller wants float32 gets a Cast under the output's name.
  const renamed = new Map<string, string>();
  for (const o of g.outputs) {
    if (home.get(o.name) !== 'float16' || ioHalf) continue;
    const o16 = fresh(g, `${o.name}_fp16`);
    for (const n of g.nodes) {
      n.inputs = n.inputs.map((v) => (v === o.name ? o16 : v));
      n.outputs = n.outputs.map((v) => (v === o.name ? o16 : v));
    }
    ed.addNode({ name: fresh(g, `${o.name}_Cast_float32`), op: 'Cast', domain: '', inputs: [o16], outputs: [o.name], attrs: { to: { type: 'int', value: FLOAT } } });
    renamed.set(o.name, o16);
  }
  if (ioHalf) g.outputs = g.outputs.map((o) => (home.get(o.name) === 'float16' ? { ...o, dtype: 'float16' } : o));
  const graph = ed.finish();
  const layers: LayerPair[] = selected
    .filter((n) => n.outputs[0] && is32(n.outputs[0]) && !(n.outputs[0] in src.initializers))
    .map((n) => ({ node: n.name, op: n.op, float: n.outputs[0]!, quantized: renamed.get(n.outputs[0]!) ?? n.outputs[0]! }));
  return { graph, layers, kept: kept.filter((k) => !blocked.has(k.node)) };
}
