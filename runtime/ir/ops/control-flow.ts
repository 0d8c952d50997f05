import { DTypeError, InternalError, InvalidGraphError, ShapeError } from '../../errors.js';
import { attrInt, attrInts, type Dim, type Graph, type Node } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import { kindField } from '../value.js';
import { defineOps, type InferContext, type InferInput, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Control flow (ONNX If-21, Loop-21, Scan-21): nodes whose semantics are a subgraph body, a `Graph` attribute with
 * its own inputs and outputs that may read values of the enclosing graphs (`Graph.outerScope`). Shape inference runs
 * the bodies' own inference (InferContext.inferBody) with the outer values visible, at any depth. Scan-8's batch
 * form is rewritten by the importer into this (opset 9+) form.
 */

/** The body attributes of a control-flow node, by name. */
export function bodyOf(node: Node, name: 'then_branch' | 'else_branch' | 'body'): Graph {
  const a = node.attrs[name];
  if (!a || a.type !== 'graph') throw new InvalidGraphError(`${node.op} node '${node.name}' has no '${name}' graph attribute.`, { node: node.name });
  return a.value;
}

/** Scan's number of scan inputs (M) and the per-input/per-output axes and directions, normalized for counting. */
export function scanParams(node: Node): { n: number; m: number; k: number; inAxes: number[]; inDirs: number[]; outAxes: number[]; outDirs: number[] } {
  const m = attrInt(node, 'num_scan_inputs');
  if (m === undefined || m < 1) throw new InvalidGraphError(`Scan node '${node.name}' needs num_scan_inputs >= 1.`, { node: node.name });
  const n = node.inputs.length - m;
  const k = node.outputs.length - n;
  if (n < 0 || k < 0) {
    throw new InvalidGraphError(`Scan node '${node.name}' has ${node.inputs.length} input(s) and ${node.outputs.length} output(s) for num_scan_inputs=${m}.`, { node: node.name });
  }
  const list = (name: string, len: number) => {
    const v = attrInts(node, name) ?? new Array<number>(len).fill(0);
    if (v.length !== len) throw new InvalidGraphError(`Scan node '${node.name}': ${name} has ${v.length} entries, expected ${len}.`, { node: node.name });
    return v;
  };
  return { n, m, k, inAxes: list('scan_input_axes', m), inDirs: list('scan_input_directions', m), outAxes: list('scan_output_axes', k), outDirs: list('scan_output_directions', k) };
}

/**
 * Checks that a node's bodies match its signature (ONNX If/Loop/Scan "body" attribute docs): If branches take no
 * input and give one output per node output; a Loop body takes (iteration_num, condition, N carried) and gives
 * (condition, N carried, K scan outputs); a Scan body takes (N state, M scan inputs) and gives (N state, K scan
 * outputs). A mismatch is an InvalidGraphError naming the node.
 */
export function checkBodySignature(node: Node): void {
  const fail = (msg: string) => {
    throw new InvalidGraphError(`${node.op} node '${node.name}': ${msg}`, { node: node.name, op: node.op });
  };
  if (node.op === 'If') {
    for (const name of ['then_branch', 'else_branch'] as const) {
      const b = bodyOf(node, name);
      if (b.inputs.length) fail(`its ${name} declares ${b.inputs.length} input(s); If branches take none.`);
      if (b.outputs.length !== node.outputs.length) fail(`its ${name} has ${b.outputs.length} output(s) but the node has ${node.outputs.length}.`);
    }
  } else if (node.op === 'Loop') {
    const b = bodyOf(node, 'body');
    const n = node.inputs.length - 2;
    if (n < 0) fail('it needs the M and cond inputs (either may be empty).');
    if (b.inputs.length !== n + 2) fail(`its body takes ${b.inputs.length} input(s); with ${n} loop-carried value(s) it must take ${n + 2} (iteration_num, condition, carried).`);
    if (b.outputs.length !== node.outputs.length + 1) {
      fail(`its body gives ${b.outputs.length} output(s); a node with ${node.outputs.length} output(s) needs ${node.outputs.length + 1} (condition, carried, scan outputs).`);
    }
    if (b.outputs.length < n + 1) fail(`its body gives ${b.outputs.length} output(s), fewer than the ${n + 1} (condition and ${n} carried) it must.`);
  } else if (node.op === 'Scan') {
    const b = bodyOf(node, 'body');
    const { n, m, k } = scanParams(node);
    if (b.inputs.length !== n + m) fail(`its body takes ${b.inputs.length} input(s); with ${n} state and ${m} scan input(s) it must take ${n + m}.`);
    if (b.outputs.length !== n + k) fail(`its body gives ${b.outputs.length} output(s); the node has ${n + k} (${n} state, ${k} scan outputs).`);
  }
}

/** Two types of one value from different paths: dtypes must agree, differing dims become symbols. */
function mergeTypes(ctx: InferContext, a: InferredOutput, b: InferredOutput, what: string): InferredOutput {
  if (a.dtype !== b.dtype) throw new DTypeError(`${what}: ${a.dtype} on one path and ${b.dtype} on the other.`);
  // Sequences and optionals (ir/value.ts): the second path's kind wins (a Loop body's output, an else branch).
  const kind = kindField(b.kind ?? a.kind);
  if (!a.shape || !b.shape || a.shape.length !== b.shape.length) return { dtype: a.dtype, ...kind };
  return { dtype: a.dtype, shape: a.shape.map((d, i) => (d === b.shape![i] ? d : ctx.symbol(`${ctx.node.name}_merged${i}`))), ...kind };
}

function body(ctx: InferContext, g: Graph, inputs: InferInput[]): InferredOutput[] {
  // Without a scope (the importer's best-effort pass) the body cannot be inferred exactly; the caller's real
  // inference after validation does it.
  if (!ctx.inferBody) throw new InternalError(`${ctx.node.op} bodies are inferred only with their outer scope.`);
  return ctx.inferBody(g, inputs);
}

const scalarBool = (v: InferInput | undefined): boolean | undefined => {
  if (!v?.value || v.value.dtype !== 'bool' || v.value.data.length !== 1) return undefined;
  return Boolean(v.value.data[0]);
};

const ifOp: OpSchema = {
  op: 'If',
  inputs: [1, 1],
  outputs: [1, Infinity],
  infer(ctx) {
    checkBodySignature(ctx.node);
    const cond = ctx.inputs[0];
    if (cond && cond.dtype !== 'bool') throw new DTypeError(`If's condition must be bool, not ${cond.dtype}.`);
    if (cond?.shape && cond.shape.some((d) => d !== 1)) throw new ShapeError(`If's condition must hold one element; its shape is [${cond.shape.join(', ')}].`);
    const known = scalarBool(cond);
    const then = known === false ? undefined : body(ctx, bodyOf(ctx.node, 'then_branch'), []);
    const els = known === true ? undefined : body(ctx, bodyOf(ctx.node, 'else_branch'), []);
    if (!then) return els!;
    if (!els) return then;
    return then.map((t, i) => mergeTypes(ctx, t, els[i]!, `If output ${i} ('${ctx.node.outputs[i]}') is`));
  },
};

/**
 * Whether a Loop never stops on its condition: the cond input is omitted or a constant true, and the body's
 * condition output is the body's condition input passed through (directly or by Identity) or a constant true.
 * Then a Loop with a trip count runs exactly M iterations.
 */
export function loopConditionAlwaysTrue(node: Node, condInput: InferInput | undefined, omitted: boolean): boolean {
  if (!omitted && scalarBool(condInput) !== true) return false;
  const b = bodyOf(node, 'body');
  const condIn = b.inputs[1]?.name;
  let v = b.outputs[0]?.name;
  for (let hops = 0; v !== undefined && hops < 16; hops++) {
    if (v === condIn) return true;
    const t = b.initializers[v];
    if (t) return t.dtype === 'bool' && t.data.length === 1 && Boolean(t.data[0]);
    const p = b.nodes.find((x) => x.outputs.includes(v!));
    if (!p || p.op !== 'Identity' || p.domain !== '') return false;
    v = p.inputs[0];
  }
  return false;
}

const loop: OpSchema = {
  op: 'Loop',
  // M and cond are both optional ('' placeholders); checkBodySignature asks for the two slots.
  inputs: [0, Infinity],
  outputs: [1, Infinity],
  infer(ctx) {
    checkBodySignature(ctx.node);
    const [m, cond, ...carried] = ctx.inputs;
    if (m && m.dtype !== 'int64') throw new DTypeError(`Loop's trip count M must be int64, not ${m.dtype}.`);
    if (cond && cond.dtype !== 'bool') throw new DTypeError(`Loop's condition must be bool, not ${cond.dtype}.`);
    const n = carried.length;
    if (carried.some((c) => !c)) throw new ShapeError('Loop-carried inputs cannot be omitted.');
    const b = bodyOf(ctx.node, 'body');
    const fixed: InferInput[] = [{ dtype: 'int64', shape: [] }, { dtype: 'bool', shape: [] }];
    let state: InferredOutput[] = carried.map((c) => ({ dtype: c!.dtype, shape: c!.shape, ...kindField(c!.kind) }));
    let outs = body(ctx, b, [...fixed, ...state]);
    const merged = state.map((s, i) => mergeTypes(ctx, s, outs[1 + i]!, `Loop-carried value ${i} ('${b.outputs[1 + i]!.name}') is`));
    if (JSON.stringify(merged) !== JSON.stringify(state)) {
      // The carried shapes change across iterations: infer once more from the merged (symbolic) types.
      state = merged;
      outs = body(ctx, b, [...fixed, ...state]);
    }
    const cout = outs[0]!;
    if (cout.dtype !== 'bool') throw new DTypeError(`Loop body's condition output must be bool, not ${cout.dtype}.`);
    const mv = m?.value && m.value.data.length === 1 ? Number(m.value.data[0]) : undefined;
    // No iteration at all when the condition starts false or M <= 0; exactly M when the condition stays true.
    const none = (ctx.node.inputs[1] && scalarBool(cond) === false) || (mv !== undefined && mv <= 0);
    const trips: Dim = none ? 0 : mv !== undefined && loopConditionAlwaysTrue(ctx.node, cond, !ctx.node.inputs[1]) ? mv : ctx.symbol(`${ctx.node.name}_iterations`);
    const scans = outs.slice(1 + n).map((o): InferredOutput => ({ dtype: o.dtype, shape: o.shape ? [trips, ...o.shape] : undefined }));
    return [...state, ...scans];
  },
};

const scan: OpSchema = {
  op: 'Scan',
  inputs: [1, Infinity],
  outputs: [1, Infinity],
  infer(ctx) {
    checkBodySignature(ctx.node);
    const { n, inAxes, outAxes } = scanParams(ctx.node);
    if (ctx.inputs.some((x) => !x)) throw new ShapeError('Scan inputs cannot be omitted.');
    const ins = ctx.inputs as InferInput[];
    let seq: Dim | undefined;
    const stepInputs = ins.slice(n).map((x, j): InferInput => {
      if (!x.shape) return { dtype: x.dtype };
      const axis = normalizeAxis(inAxes[j]!, x.shape.length, `Scan input ${j}'s scan axis`);
      const len = x.shape[axis]!;
      if (typeof seq === 'number' && typeof len === 'number' && len !== seq) throw new ShapeError(`Scan inputs have sequence lengths ${seq} and ${len}; they must agree.`);
      if (seq === undefined || typeof len === 'number') seq = len;
      return { dtype: x.dtype, shape: x.shape.filter((_, i) => i !== axis) };
    });
    const length: Dim = seq ?? ctx.symbol(`${ctx.node.name}_sequence`);
    const b = bodyOf(ctx.node, 'body');
    let state: InferredOutput[] = ins.slice(0, n).map((x) => ({ dtype: x.dtype, shape: x.shape }));
    let outs = body(ctx, b, [...state, ...stepInputs]);
    const merged = state.map((s, i) => mergeTypes(ctx, s, outs[i]!, `Scan state ${i} ('${b.outputs[i]!.name}') is`));
    if (JSON.stringify(merged) !== JSON.stringify(state)) {
      state = merged;
      outs = body(ctx, b, [...state, ...stepInputs]);
    }
    const scans = outs.slice(n).map((o, k): InferredOutput => {
      if (!o.shape) return { dtype: o.dtype };
      const axis = normalizeAxis(outAxes[k]!, o.shape.length + 1, `Scan output ${k}'s scan axis`);
      const shape = [...o.shape];
      shape.splice(axis, 0, length);
      return { dtype: o.dtype, shape };
    });
    return [...state, ...scans];
  },
};

export const schemas: Record<string, OpSchema> = defineOps(ifOp, loop, scan);
