import { InvalidArgumentError, UnsupportedOpError, type UnsupportedNode } from '../../errors.js';
import type { Graph, Node, ValueInfo } from '../graph.js';
import { attrInt } from '../graph.js';
import { schemas as SEQUENCE_SCHEMAS, sequenceMapBody, splitToSequenceAxis } from '../ops/sequences.js';
import { isConcrete } from '../shape.js';
import { tensorFromNumbers, type HostTensor } from '../tensor.js';
import { kindOf } from '../value.js';
import { removeDeadCode } from './dead-code.js';
import { hasSubgraphs, renameBodyReads } from './subgraph-names.js';

/**
 * Sequences and optionals at plan time, for backends whose plan holds tensors only (WebGPU). With the lengths of
 * fed sequences and the presence of fed optionals known (they are part of the plan's signature), every sequence
 * value is a list of tensor values and every optional one tensor, one sequence or nothing:
 *  1. flattenSequenceInputs: a fed sequence becomes one tensor input per element, rebuilt by SequenceConstruct (an
 *     optional by Optional), so the graph's inputs are tensors;
 *  2. lowerSequences (repeated, between shape specialization and control-flow lowering, see
 *     backends/webgpu/sequence-session.ts): each sequence op whose sequence inputs are such lists and whose
 *     positions are constants is rewritten on tensors: SequenceInsert/Erase re-index the list, SequenceAt becomes
 *     an Identity of the element, SequenceLength a constant, SplitToSequence a Split (+ Squeeze), ConcatFromSequence
 *     a Concat (Unsqueeze + Concat for new_axis), SequenceMap one copy of its body per element, Identity of a
 *     sequence a copy of the list, OptionalHasElement a constant, OptionalGetElement the value it holds. A sequence
 *     stays in "canonical" form, produced by SequenceConstruct or SequenceEmpty (an optional by Optional);
 *  3. finishSequenceLowering: graph outputs that are sequences or optionals are replaced by their element tensors
 *     (the returned map says which), the canonical nodes die, and whatever sequence op is left (a position computed
 *     from tensor data, a sequence a Loop builds with a computed trip count) is an UnsupportedOpError naming the
 *     node and the reason.
 */

const SEQUENCE_OPS: ReadonlySet<string> = new Set(Object.keys(SEQUENCE_SCHEMAS));
/** The ops a lowered sequence or optional is held in between rewrites (see lowerSequences). */
const CANONICAL: ReadonlySet<string> = new Set(['SequenceConstruct', 'SequenceEmpty', 'Optional']);

/** How a fed non-tensor input looks in one run: a sequence of `length` elements, an optional's presence. */
export type FedLayout = { kind: 'sequence'; length: number } | { kind: 'optional'; present: false } | { kind: 'optional'; present: true; length?: number };

/** Where a non-tensor graph input or output lives in the flattened graph: tensor names, or null (empty optional). */
export type Flattened = string | string[] | null;

class Names {
  readonly #used = new Set<string>();
  constructor(g: Graph) {
    const add = (x: Graph) => {
      for (const i of x.inputs) this.#used.add(i.name);
      for (const o of x.outputs) this.#used.add(o.name);
      for (const k of Object.keys(x.initializers)) this.#used.add(k);
      for (const k of Object.keys(x.values)) this.#used.add(k);
      for (const v of x.outerScope ?? []) this.#used.add(v);
      for (const n of x.nodes) {
        this.#used.add(n.name);
        for (const v of [...n.inputs, ...n.outputs]) if (v) this.#used.add(v);
        for (const a of Object.values(n.attrs)) for (const b of a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : []) add(b);
      }
    };
    add(g);
  }
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.#used.has(name); i++) name = `${hint}_${i}`;
    this.#used.add(name);
    return name;
  }
}

const node = (names: Names, at: string, op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}): Node => ({
  name: names.fresh(`${at}/${op}`),
  op,
  domain: '',
  inputs,
  outputs,
  attrs,
});

/**
 * Step 1: the graph with each non-tensor input replaced by tensor inputs (sequence elements `<name>.<i>`, an
 * optional's tensor `<name>.value`) and the nodes that rebuild it. `feeds` maps each such input to where its fed
 * tensors go.
 */
export function flattenSequenceInputs(src: Graph, layout: Readonly<Record<string, FedLayout>>): { graph: Graph; feeds: Record<string, Flattened> } {
  const names = new Names(src);
  const inputs: ValueInfo[] = [];
  const head: Node[] = [];
  const feeds: Record<string, Flattened> = {};
  const elements = (i: ValueInfo, n: number, out: string) => {
    const elems = Array.from({ length: n }, (_, k) => names.fresh(`${i.name}.${k}`));
    for (const e of elems) inputs.push({ name: e, dtype: i.dtype, ...(i.shape ? { shape: [...i.shape] } : {}) });
    head.push(n ? node(names, i.name, 'SequenceConstruct', elems, [out]) : node(names, i.name, 'SequenceEmpty', [], [out], { dtype: { type: 'string', value: i.dtype } }));
    return elems;
  };
  for (const i of src.inputs) {
    const kind = kindOf(i);
    const l = layout[i.name];
    if (kind === 'tensor') {
      inputs.push(i);
      continue;
    }
    if (kind === 'sequence') {
      if (l?.kind !== 'sequence') throw new InvalidArgumentError(`Input '${i.name}' is a sequence; feed it an array of tensors.`, { input: i.name });
      feeds[i.name] = elements(i, l.length, i.name);
      continue;
    }
    if (l?.kind !== 'optional') throw new InvalidArgumentError(`Input '${i.name}' is an optional; feed it a value or null.`, { input: i.name });
    if (!l.present) {
      const type = { kind: kind === 'optional-sequence' ? ('sequence' as const) : ('tensor' as const), dtype: i.dtype, ...(i.shape ? { shape: [...i.shape] } : {}) };
      head.push(node(names, i.name, 'Optional', [], [i.name], { type: { type: 'type', value: type } }));
      feeds[i.name] = null;
    } else if (kind === 'optional-tensor') {
      const v = names.fresh(`${i.name}.value`);
      inputs.push({ name: v, dtype: i.dtype, ...(i.shape ? { shape: [...i.shape] } : {}) });
      head.push(node(names, i.name, 'Optional', [v], [i.name]));
      feeds[i.name] = v;
    } else {
      const s = names.fresh(`${i.name}.sequence`);
      feeds[i.name] = elements(i, l.length ?? 0, s);
      head.push(node(names, i.name, 'Optional', [s], [i.name]));
    }
  }
  return { graph: { ...src, inputs, nodes: [...head, ...src.nodes] }, feeds };
}

/** The constant integer a position-like input holds, or undefined when it is computed. */
function constInt(g: Graph, v: string | undefined): number | undefined {
  const t = v ? g.initializers[v] : undefined;
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
}

const int64s = (values: number[]): HostTensor => tensorFromNumbers('int64', [values.length], values);

/** Why a sequence op cannot be rewritten yet (undefined: it can). Shared by the rewrite and the final error. */
function blocker(g: Graph, n: Node, producer: Map<string, Node>): string | undefined {
  const listOf = (v: string | undefined) => (v ? canonicalList(producer, v) : undefined);
  const notStatic = (v: string) => {
    const p = producer.get(v);
    return `its input sequence '${v}' is not known when the plan is made (it comes from ${p ? `${p.op} node '${p.name}'` : 'outside the graph'})`;
  };
  const position = (i: number, what = 'position') => {
    const v = n.inputs[i];
    if (v && constInt(g, v) === undefined) return `its ${what} '${v}' is computed from tensor data; WebGPU plans sequences with constant positions only`;
    return undefined;
  };
  switch (n.op) {
    case 'SequenceInsert':
    case 'SequenceAt':
    case 'SequenceErase':
      return listOf(n.inputs[0]) ? position(n.op === 'SequenceInsert' ? 2 : 1) : notStatic(n.inputs[0]!);
    case 'SequenceLength':
    case 'ConcatFromSequence':
      return listOf(n.inputs[0]) ? undefined : notStatic(n.inputs[0]!);
    case 'SplitToSequence': {
      if (!isConcrete(g.values[n.inputs[0]!]?.shape)) return `the shape of its input '${n.inputs[0]}' is not known when the plan is made`;
      const s = n.inputs[1];
      if (s && !g.initializers[s]) return `its split '${s}' is computed from tensor data; WebGPU plans sequences with constant split sizes only`;
      return undefined;
    }
    case 'SequenceMap': {
      const seqs = n.inputs.filter((v) => kindOf(g.values[v] ?? { kind: undefined }) === 'sequence' || producer.get(v)?.op === 'SequenceConstruct');
      const bad = seqs.find((v) => !listOf(v));
      return bad === undefined ? (listOf(n.inputs[0]) ? undefined : notStatic(n.inputs[0]!)) : notStatic(bad);
    }
    case 'Identity':
    case 'OptionalGetElement':
    case 'OptionalHasElement': {
      const v = n.inputs[0];
      if (!v) return undefined;
      const k = kindOf(g.values[v] ?? { kind: undefined });
      if (k === 'tensor') return undefined;
      const p = producer.get(v);
      const ok = k === 'sequence' ? !!listOf(v) : p?.op === 'Optional' && p.domain === '' && (!p.inputs[0] || kindOf(g.values[p.inputs[0]] ?? {}) === 'tensor' || !!listOf(p.inputs[0]));
      return ok ? undefined : `its input '${v}' is not known when the plan is made (it comes from ${p ? `${p.op} node '${p.name}'` : 'outside the graph'})`;
    }
    default:
      return undefined;
  }
}

/** The element values of a sequence in canonical form (SequenceConstruct/SequenceEmpty), else undefined. */
function canonicalList(producer: Map<string, Node>, v: string): string[] | undefined {
  const p = producer.get(v);
  if (!p || p.domain !== '') return undefined;
  if (p.op === 'SequenceConstruct') return p.inputs;
  if (p.op === 'SequenceEmpty') return [];
  return undefined;
}

/**
 * Step 2: rewrites, in place, every sequence/optional op that is decided (see the file comment). Run it after
 * inferShapes (it reads value kinds and shapes); returns how many nodes it rewrote, so the caller re-infers and
 * repeats while it makes progress.
 */
export function lowerSequences(g: Graph): number {
  const names = new Names(g);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const constant = (at: string, hint: string, t: HostTensor) => {
    const name = names.fresh(`${at}/${hint}`);
    g.initializers[name] = t;
    return name;
  };
  const list = (v: string) => canonicalList(producer, v)!;
  // A copy of a sequence (Identity, OptionalGetElement of a sequence): the same elements.
  const copySeq = (n: Node, v: string, out: string): Node => {
    const p = producer.get(v)!;
    return p.op === 'SequenceEmpty' ? node(names, n.name, 'SequenceEmpty', [], [out], { ...p.attrs }) : node(names, n.name, 'SequenceConstruct', [...list(v)], [out]);
  };
  const isSeq = (v: string) => !!canonicalList(producer, v);
  const range = (p: number, len: number, lo: number, hi: number, n: Node) => {
    if (p < lo || p > hi) throw new InvalidArgumentError(`${n.op} node '${n.name}': position ${p} is out of range for a sequence of ${len} element(s) (valid: ${lo} to ${hi}).`, { node: n.name });
    return p < 0 ? p + len : p;
  };

  const rewrite = (n: Node): Node[] | undefined => {
    if (n.domain !== '' || blocker(g, n, producer) !== undefined) return undefined;
    const [a, b, c] = n.inputs;
    const out = n.outputs[0]!;
    switch (n.op) {
      case 'SequenceInsert': {
        const s = list(a!);
        const at = c ? range(constInt(g, c)!, s.length, -s.length, s.length, n) : s.length;
        return [node(names, n.name, 'SequenceConstruct', [...s.slice(0, at), b!, ...s.slice(at)], [out])];
      }
      case 'SequenceErase': {
        const s = list(a!);
        if (!b && !s.length) throw new InvalidArgumentError(`SequenceErase node '${n.name}': cannot erase from an empty sequence.`, { node: n.name });
        const at = b ? range(constInt(g, b)!, s.length, -s.length, s.length - 1, n) : s.length - 1;
        const rest = s.filter((_, i) => i !== at);
        return [rest.length ? node(names, n.name, 'SequenceConstruct', rest, [out]) : node(names, n.name, 'SequenceEmpty', [], [out], { dtype: { type: 'string', value: g.values[a!]!.dtype } })];
      }
      case 'SequenceAt': {
        const s = list(a!);
        return [node(names, n.name, 'Identity', [s[range(constInt(g, b)!, s.length, -s.length, s.length - 1, n)]!], [out])];
      }
      case 'SequenceLength':
        g.initializers[out] = tensorFromNumbers('int64', [], [list(a!).length]);
        return [];
      case 'ConcatFromSequence': {
        const s = list(a!);
        if (!s.length) throw new InvalidArgumentError(`ConcatFromSequence node '${n.name}' needs at least one element; the sequence is empty.`, { node: n.name });
        const axis = attrInt(n, 'axis')!;
        if (attrInt(n, 'new_axis', 0) === 0) return [node(names, n.name, 'Concat', [...s], [out], { axis: { type: 'int', value: axis } })];
        const axes = constant(n.name, 'axes', int64s([axis]));
        const parts = s.map((e) => names.fresh(`${n.name}/${e}.unsqueezed`));
        return [...s.map((e, i) => node(names, n.name, 'Unsqueeze', [e, axes], [parts[i]!])), node(names, n.name, 'Concat', parts, [out], { axis: { type: 'int', value: axis } })];
      }
      case 'SplitToSequence':
        return splitToSequence(g, n, names, constant);
      case 'SequenceMap':
        return sequenceMap(g, n, names, list);
      case 'Identity':
      case 'OptionalGetElement': {
        const k = kindOf(g.values[a!] ?? {});
        if (k === 'tensor') return n.op === 'Identity' ? undefined : [node(names, n.name, 'Identity', [a!], [out])];
        if (k === 'sequence') return [copySeq(n, a!, out)];
        const held = producer.get(a!)!.inputs[0];
        if (n.op === 'Identity') return [node(names, n.name, 'Optional', held ? [held] : [], [out], { ...producer.get(a!)!.attrs })];
        if (!held) throw new InvalidArgumentError(`OptionalGetElement node '${n.name}': the optional '${a}' is empty.`, { node: n.name });
        return [isSeq(held) ? copySeq(n, held, out) : node(names, n.name, 'Identity', [held], [out])];
      }
      case 'OptionalHasElement': {
        const k = a ? kindOf(g.values[a] ?? {}) : undefined;
        const has = !a ? false : k === 'tensor' || k === 'sequence' ? true : !!producer.get(a)!.inputs[0];
        g.initializers[out] = tensorFromNumbers('bool', [], [has ? 1 : 0]);
        return [];
      }
      default:
        return undefined;
    }
  };

  let changed = 0;
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    const r = rewrite(n);
    if (!r) {
      nodes.push(n);
      continue;
    }
    changed++;
    for (const x of r) {
      nodes.push(x);
      for (const o of x.outputs) if (o) producer.set(o, x);
    }
    for (const o of n.outputs) if (o && !r.some((x) => x.outputs.includes(o))) producer.delete(o);
  }
  g.nodes = nodes;
  return changed;
}

/** SplitToSequence on a concrete shape: Split by the sizes (Squeeze each part when keepdims=0 without split). */
function splitToSequence(g: Graph, n: Node, names: Names, constant: (at: string, hint: string, t: HostTensor) => string): Node[] {
  const x = g.values[n.inputs[0]!]!;
  const shape = x.shape as number[];
  const { axis, keepdims } = splitToSequenceAxis(n, shape.length);
  const len = shape[axis]!;
  const s = n.inputs[1] ? g.initializers[n.inputs[1]] : undefined;
  let sizes: number[];
  if (!s) sizes = new Array<number>(len).fill(1);
  else if (s.shape.length === 0) {
    const c = Number(s.data[0]);
    if (!(c > 0)) throw new InvalidArgumentError(`SplitToSequence node '${n.name}': split must be positive, got ${c}.`, { node: n.name });
    sizes = Array.from({ length: Math.ceil(len / c) }, (_, i) => Math.min(c, len - i * c));
  } else sizes = Array.from(s.data as ArrayLike<number | bigint>, Number);
  const out = n.outputs[0]!;
  if (!sizes.length) return [node(names, n.name, 'SequenceEmpty', [], [out], { dtype: { type: 'string', value: x.dtype } })];
  const parts = sizes.map((_, i) => names.fresh(`${n.name}/part${i}`));
  const nodes = [node(names, n.name, 'Split', [n.inputs[0]!, constant(n.name, 'sizes', int64s(sizes))], parts, { axis: { type: 'int', value: axis } })];
  if (s || keepdims) return [...nodes, node(names, n.name, 'SequenceConstruct', parts, [out])];
  const axes = constant(n.name, 'axes', int64s([axis]));
  const squeezed = parts.map((p) => names.fresh(`${p}.squeezed`));
  return [...nodes, ...parts.map((p, i) => node(names, n.name, 'Squeeze', [p, axes], [squeezed[i]!])), node(names, n.name, 'SequenceConstruct', squeezed, [out])];
}

/**
 * SequenceMap with its sequences known: one copy of the body per element, the body's inputs bound to the elements
 * (tensor inputs whole), its own values renamed, its outputs gathered into one sequence per node output.
 */
function sequenceMap(g: Graph, n: Node, names: Names, list: (v: string) => string[]): Node[] {
  const body = sequenceMapBody(n);
  const isSeq = (v: string) => kindOf(g.values[v] ?? {}) === 'sequence';
  const count = list(n.inputs[0]!).length;
  n.inputs.forEach((v, i) => {
    if (isSeq(v) && list(v).length !== count) {
      throw new InvalidArgumentError(`SequenceMap node '${n.name}': input ${i} has ${list(v).length} element(s); input 0 has ${count}.`, { node: n.name });
    }
  });
  const out: Node[] = [];
  const gathered: string[][] = body.outputs.map(() => []);
  for (let k = 0; k < count; k++) {
    const rename = new Map<string, string>();
    body.inputs.forEach((bi, i) => rename.set(bi.name, isSeq(n.inputs[i]!) ? list(n.inputs[i]!)[k]! : n.inputs[i]!));
    for (const [name, t] of Object.entries(body.initializers)) {
      const fresh = names.fresh(`${n.name}/${k}/${name}`);
      g.initializers[fresh] = t;
      rename.set(name, fresh);
    }
    for (const bn of body.nodes) for (const o of bn.outputs) if (o) rename.set(o, names.fresh(`${n.name}/${k}/${o}`));
    const r = (v: string) => (v ? rename.get(v) ?? v : v);
    for (const bn of body.nodes) {
      out.push({
        ...bn,
        name: names.fresh(`${n.name}/${k}/${bn.name}`),
        inputs: bn.inputs.map(r),
        outputs: bn.outputs.map(r),
        attrs: hasSubgraphs(bn) ? renameBodyReads(bn, r) : { ...bn.attrs },
      });
    }
    body.outputs.forEach((o, j) => gathered[j]!.push(r(o.name)));
  }
  n.outputs.forEach((o, j) => {
    if (!o) return;
    const dtype = g.values[o]?.dtype ?? body.outputs[j]!.dtype;
    out.push(count ? node(names, n.name, 'SequenceConstruct', gathered[j]!, [o]) : node(names, n.name, 'SequenceEmpty', [], [o], { dtype: { type: 'string', value: dtype } }));
  });
  return out;
}

/**
 * Step 3: graph outputs that are sequences or optionals become their element tensors (returned: output name → its
 * tensor names, or null for an empty optional), dead canonical nodes go, and any sequence/optional op or value
 * left is an UnsupportedOpError naming each node and why. `opset` is named in the error.
 */
export function finishSequenceLowering(g: Graph, opset = 0): Record<string, Flattened> {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const flat: Record<string, Flattened> = {};
  const outputs: ValueInfo[] = [];
  const seen = new Set<string>();
  const addOut = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const v = g.values[name];
    const t = g.initializers[name];
    outputs.push({ name, dtype: v?.dtype ?? t!.dtype, ...(v?.shape ? { shape: [...v.shape] } : t ? { shape: [...t.shape] } : {}) });
  };
  const unresolved: UnsupportedNode[] = [];
  for (const o of g.outputs) {
    const info = g.values[o.name] ?? o;
    const kind = kindOf(info);
    if (kind === 'tensor') {
      addOut(o.name);
      continue;
    }
    let v = o.name;
    const p = producer.get(v);
    if (kind === 'optional-tensor' || kind === 'optional-sequence') {
      if (!p || p.op !== 'Optional') {
        unresolved.push({ op: p?.op ?? 'Optional', domain: '', opset, node: p?.name ?? o.name, reason: `output '${o.name}' (an optional) is not known when the plan is made` });
        continue;
      }
      if (!p.inputs[0]) {
        flat[o.name] = null;
        continue;
      }
      v = p.inputs[0];
      if (kind === 'optional-tensor') {
        flat[o.name] = v;
        addOut(v);
        continue;
      }
    }
    const elems = canonicalList(producer, v);
    if (!elems) {
      const q = producer.get(v);
      unresolved.push({ op: q?.op ?? 'SequenceConstruct', domain: '', opset, node: q?.name ?? v, reason: `output '${o.name}' (a sequence) is not known when the plan is made` });
      continue;
    }
    flat[o.name] = [...elems];
    elems.forEach(addOut);
  }
  g.outputs = outputs;
  removeDeadCode(g);
  // A canonical node left alive is read by an op that could not be rewritten: that op is the one to name.
  const left = g.nodes.filter((n) => n.domain === '' && SEQUENCE_OPS.has(n.op));
  const readers = left.filter((n) => !CANONICAL.has(n.op));
  for (const n of readers.length ? readers : left) {
    const why = blocker(g, n, producer) ?? 'WebGPU plans hold tensors only, and this sequence or optional value could not be resolved when planning';
    unresolved.push({ op: n.op, domain: '', opset, node: n.name, reason: why });
  }
  if (unresolved.length) {
    throw new UnsupportedOpError(unresolved, "WebGPU resolves sequences and optionals when planning; run this model with { backend: 'cpu' }.");
  }
  return flat;
}

/** Whether a graph has sequence/optional values or ops anywhere a plan would see them (top level). */
export function hasNonTensorValues(g: Graph): boolean {
  return (
    [...g.inputs, ...g.outputs].some((v) => kindOf(v) !== 'tensor') ||
    g.nodes.some((n) => n.domain === '' && (SEQUENCE_OPS.has(n.op) || hasSubgraphs(n)) && containsSequenceOps(n))
  );
}

function containsSequenceOps(n: Node): boolean {
  if (SEQUENCE_OPS.has(n.op)) return true;
  for (const a of Object.values(n.attrs)) {
    for (const b of a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : []) {
      if ([...b.inputs, ...b.outputs].some((v) => kindOf(v) !== 'tensor') || b.nodes.some(containsSequenceOps)) return true;
    }
  }
  return false;
}
