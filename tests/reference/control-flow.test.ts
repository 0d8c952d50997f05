import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, InvalidGraphError, UnsupportedOpError } from '../../runtime/errors.js';
import { importOnnx } from '../../importers/onnx/index.js';
import { allClose } from '../helpers/compare.js';
import {
  body,
  constantTripLoop,
  endlessLoop,
  ifDifferentShapes,
  loopComputedTrips,
  loopCountedByBody,
  loopUntil,
  loopWithDataIf,
  loopWithNestedIf,
  nestedCountingLoops,
  scanAxes,
  scan8Batch,
  scanWithNestedLoop,
  type CfCase,
} from '../helpers/control-flow-models.js';
import { Rng } from '../helpers/random.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { graphAttr, int, model, vi } from '../importer/model-builder.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { DEFAULT_MAX_LOOP_ITERATIONS, kernels as CONTROL_FLOW_KERNELS } from '../../runtime/backends/cpu/kernels/control-flow.js';
import type { CpuKernelContext } from '../../runtime/backends/cpu/kernel.js';

/**
 * If/Loop/Scan on the CPU reference against onnxruntime-node: nested bodies (a Loop holding an If, a Scan holding
 * a Loop) reading values of scopes further out, data-dependent termination, directions and axes, the Scan-8 batch
 * form; and the load-time and run-time errors (missing outer value, body signature, maxLoopIterations).
 */

const rng = new Rng(9);

async function compareWithOrt(c: CfCase): Promise<void> {
  const [ours, ref] = await Promise.all([runModelCpu(c.bytes, c.feeds), runModelOrt(c.bytes, c.feeds)]);
  expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
  for (const [name, t] of Object.entries(ref)) {
    const r = allClose(ours[name]!, t, { rtol: 1e-5, atol: 1e-6 });
    expect(r.ok, `${c.name}: output '${name}': ${r.ok ? '' : r.message}`).toBe(true);
  }
}

describe('control flow on the CPU reference vs onnxruntime-node', () => {
  const cases = [
    loopWithNestedIf(rng, 5),
    loopWithNestedIf(rng, 1),
    loopUntil(),
    scanWithNestedLoop(rng),
    scan8Batch(rng),
    ifDifferentShapes(true),
    ifDifferentShapes(false),
    constantTripLoop(rng, 3),
    loopCountedByBody(rng, 10),
    loopCountedByBody(rng, 2),
    loopComputedTrips([1, 3, 2], rng),
    loopWithDataIf([0.5, -0.25, 1], 0.5),
    loopWithDataIf([-2, 0.5, 0.25], 3),
    scanAxes(rng),
  ];
  for (const c of cases) it(c.name, () => compareWithOrt(c));

  it('a Loop with trip count 0 returns its initial values and empty scan outputs', async () => {
    const c = loopWithNestedIf(rng, 0);
    const ours = await runModelCpu(c.bytes, c.feeds);
    expect(Array.from(ours.x_final!.data as Float32Array)).toEqual(Array.from(c.feeds.x0!.data as Float32Array));
    expect(ours.xs!.shape).toEqual([0, 2, 3]);
  });

  it('infers nested bodies with outer-scope types: the Scan output shape is exact at load', async () => {
    const c = scanWithNestedLoop(rng);
    const m = await importOnnx(c.bytes);
    expect(m.graph.values.steps).toMatchObject({ dtype: 'float32', shape: [3, 5] });
    expect(m.graph.values.s_final).toMatchObject({ dtype: 'float32', shape: [3] });
  });

  it('a constant trip count with a pass-through condition gives the scan outputs a known leading dim', async () => {
    const m = await importOnnx(constantTripLoop(rng, 3).bytes);
    expect(m.graph.values.xs?.shape).toEqual([3, 4]);
    const data = await importOnnx(loopWithNestedIf(rng, 5).bytes);
    expect(typeof data.graph.values.xs?.shape?.[0]).toBe('string'); // M is a graph input: a symbol
  });
});

describe('control-flow errors', () => {
  it('a Loop past maxLoopIterations throws a typed error instead of hanging', async () => {
    const c = endlessLoop();
    const s = await InferenceSession.create(c.bytes, { backend: 'cpu', maxLoopIterations: 1000 });
    const run = s.run({ x0: new Tensor('float32', new Float32Array([1]), [1]) });
    await expect(run).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(run).rejects.toThrow(/maxLoopIterations = 1000/);
    await s.release();
  });

  it('without the option, a Loop stops at the default of 1,000,000 iterations', async () => {
    // The kernel alone, with a body runner that passes the condition and value through: a million iterations of the
    // kernel's own bookkeeping (the executor's per-body cost is exercised by the test above).
    const m = await importOnnx(endlessLoop(true).bytes);
    const node = m.graph.nodes.find((n) => n.op === 'Loop')!;
    let iterations = 0;
    const ctx = {
      maxElements: 1 << 20,
      runBody: (b: { inputs: { name: string }[] }, feeds: Record<string, HostTensor>) => {
        iterations++;
        return [feeds[b.inputs[1]!.name]!, feeds[b.inputs[2]!.name]!];
      },
    } as unknown as CpuKernelContext;
    const x = tensorFromNumbers('float32', [1], [1]);
    const go = tensorFromNumbers('bool', [], [1]);
    expect(() => CONTROL_FLOW_KERNELS.Loop!([undefined, go, x], node, ctx)).toThrow(/maxLoopIterations = 1000000/);
    expect(iterations).toBe(DEFAULT_MAX_LOOP_ITERATIONS);
    expect(DEFAULT_MAX_LOOP_ITERATIONS).toBe(1_000_000);
  });

  it('rejects a bad maxLoopIterations', async () => {
    await expect(InferenceSession.create(endlessLoop().bytes, { backend: 'cpu', maxLoopIterations: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a body reading a value no enclosing scope defines is an InvalidGraphError at load', async () => {
    const thenB = body('then', [{ op: 'Add', inputs: ['a', 'nowhere'], outputs: ['t'] }], [], [vi('t', 1, [2])]);
    const elseB = body('else', [{ op: 'Neg', inputs: ['a'], outputs: ['e'] }], [], [vi('e', 1, [2])]);
    const bytes = model({
      nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] }],
      inputs: [vi('c', 9, []), vi('a', 1, [2])],
      outputs: [vi('y', 1, [2])],
    });
    const load = InferenceSession.create(bytes, { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(InvalidGraphError);
    await expect(load).rejects.toThrow(/nowhere/);
  });

  it('a body two levels down reading a missing value is found too', async () => {
    const inner = body('inner', [{ op: 'Add', inputs: ['x_in', 'ghost'], outputs: ['x_out'] }, { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] }],
      [vi('i', 7, []), vi('c_in', 9, []), vi('x_in', 1, [1])], [vi('c_out', 9, []), vi('x_out', 1, [1])]);
    const thenB = body('then', [{ op: 'Loop', inputs: ['m', '', 'a'], outputs: ['t'], attrs: [graphAttr('body', inner)] }], [], [vi('t', 1, [1])]);
    const elseB = body('else', [{ op: 'Neg', inputs: ['a'], outputs: ['e'] }], [], [vi('e', 1, [1])]);
    const bytes = model({
      nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] }],
      inputs: [vi('c', 9, []), vi('a', 1, [1]), vi('m', 7, [])],
      outputs: [vi('y', 1, [1])],
    });
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(InvalidGraphError);
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(/ghost/);
  });

  it('a Loop body with the wrong number of inputs is an InvalidGraphError at load', async () => {
    const bad = body('bad', [{ op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] }, { op: 'Neg', inputs: ['x_in'], outputs: ['x_out'] }],
      [vi('c_in', 9, []), vi('x_in', 1, [1])], [vi('c_out', 9, []), vi('x_out', 1, [1])]);
    const bytes = model({
      nodes: [{ op: 'Loop', inputs: ['m', '', 'x'], outputs: ['y'], attrs: [graphAttr('body', bad)] }],
      inputs: [vi('m', 7, []), vi('x', 1, [1])],
      outputs: [vi('y', 1, [1])],
    });
    const load = InferenceSession.create(bytes, { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(InvalidGraphError);
    await expect(load).rejects.toThrow(/body takes 2 input\(s\).*must take 3/);
  });

  it('If branches with a different output count than the node are an InvalidGraphError at load', async () => {
    const two = body('then', [{ op: 'Neg', inputs: ['a'], outputs: ['t'] }, { op: 'Abs', inputs: ['a'], outputs: ['t2'] }], [], [vi('t', 1, [1]), vi('t2', 1, [1])]);
    const one = body('else', [{ op: 'Neg', inputs: ['a'], outputs: ['e'] }], [], [vi('e', 1, [1])]);
    const bytes = model({
      nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], attrs: [graphAttr('then_branch', two), graphAttr('else_branch', one)] }],
      inputs: [vi('c', 9, []), vi('a', 1, [1])],
      outputs: [vi('y', 1, [1])],
    });
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(/then_branch has 2 output\(s\) but the node has 1/);
  });

  it('a Scan body whose outputs do not match num_scan_inputs and the node is an InvalidGraphError', async () => {
    const b = body('b', [{ op: 'Add', inputs: ['s', 'x'], outputs: ['s2'] }], [vi('s', 1, [2]), vi('x', 1, [2])], [vi('s2', 1, [2])]);
    const bytes = model({
      opset: 11,
      irVersion: 6,
      nodes: [{ op: 'Scan', inputs: ['s0', 'xs'], outputs: ['y', 'z'], attrs: [graphAttr('body', b), int('num_scan_inputs', 1)] }],
      inputs: [vi('s0', 1, [2]), vi('xs', 1, [3, 2])],
      outputs: [vi('y', 1, [2]), vi('z', 1, [3, 2])],
    });
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toBeInstanceOf(InvalidGraphError);
  });

  it('an unsupported op inside a body is named in the UnsupportedOpError with its path', async () => {
    const thenB = body('then', [{ op: 'NoSuchOp', inputs: ['a'], outputs: ['t'], name: 'weird' }], [], [vi('t', 1, [1])]);
    const elseB = body('else', [{ op: 'Neg', inputs: ['a'], outputs: ['e'] }], [], [vi('e', 1, [1])]);
    const bytes = model({
      nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], name: 'branchy', attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] }],
      inputs: [vi('c', 9, []), vi('a', 1, [1])],
      outputs: [vi('y', 1, [1])],
    });
    const load = InferenceSession.create(bytes, { backend: 'cpu' });
    await expect(load).rejects.toBeInstanceOf(UnsupportedOpError);
    await expect(load).rejects.toThrow(/branchy\/weird/);
  });

  it('Scan-8 with sequence_lens is refused with a reason', async () => {
    const b = body('b', [{ op: 'Add', inputs: ['s', 'x'], outputs: ['s2'] }], [vi('s', 1, [2]), vi('x', 1, [2])], [vi('s2', 1, [2])]);
    const bytes = model({
      opset: 8,
      irVersion: 3,
      nodes: [{ op: 'Scan', inputs: ['lens', 's0', 'xs'], outputs: ['y'], attrs: [graphAttr('body', b), int('num_scan_inputs', 1)] }],
      inputs: [vi('lens', 6, [1]), vi('s0', 1, [1, 2]), vi('xs', 1, [1, 3, 2])],
      outputs: [vi('y', 1, [1, 2])],
    });
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(/sequence_lens/);
  });
});

describe('plan-time lowering (passes/control-flow.ts, as WebGPU plans use it) computes what the nested form does', () => {
  /** Specializes like a static plan would (the given feeds baked as constants) and runs the result on the CPU. */
  async function lowered(c: CfCase, bake: string[]) {
    const m = await importOnnx(c.bytes);
    const { graph } = optimize(m.graph);
    const baked = { ...graph, inputs: graph.inputs.filter((i) => !bake.includes(i.name)), initializers: { ...graph.initializers, ...Object.fromEntries(bake.map((b) => [b, c.feeds[b]!])) } };
    const feeds = Object.fromEntries(Object.entries(c.feeds).filter(([k]) => !bake.includes(k)));
    const plan = specialize(baked, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.shape])));
    const outs = plan.outputs.map((o) => o.name);
    const computed = runGraphCpu(plan, feeds, outs.filter((o) => !(o in plan.initializers)));
    for (const o of outs) if (o in plan.initializers) computed[o] = plan.initializers[o]!;
    return { plan, computed };
  }

  const cases: [CfCase, string[], number][] = [
    [loopWithNestedIf(rng, 5), ['n'], 5],
    [scanWithNestedLoop(rng), [], 5],
    [scan8Batch(rng), [], 2],
    [constantTripLoop(rng, 3), [], 3],
    [ifDifferentShapes(false), ['c'], 1],
    [loopCountedByBody(rng, 10), [], 5],
    [loopCountedByBody(rng, 2), [], 3],
    [scanAxes(rng), [], 4],
  ];
  for (const [c, bake] of cases) {
    it(`${c.name}: no control flow left, same outputs`, async () => {
      const { plan, computed } = await lowered(c, bake);
      expect(plan.nodes.filter((n) => ['If', 'Loop', 'Scan'].includes(n.op)).map((n) => n.name)).toEqual([]);
      const ref = await runModelCpu(c.bytes, c.feeds);
      for (const [name, t] of Object.entries(ref)) {
        const r = allClose(computed[name]!, t, { rtol: 1e-6, atol: 1e-7 });
        expect(r.ok, `${name}: ${r.ok ? '' : r.message}`).toBe(true);
      }
    });
  }

  it('an If on a value computed from data stays for the session to stage', async () => {
    const c = ifDifferentShapes(true);
    const m = await importOnnx(c.bytes);
    const plan = specialize(optimize(m.graph).graph, { c: [], a: [2] });
    expect(plan.nodes.map((n) => n.op)).toEqual(['If']);
  });

  it('a Loop whose body computes its condition from data: one iteration is peeled, the rest waits for its condition', async () => {
    const m = await importOnnx(loopUntil().bytes);
    const plan = specialize(optimize(m.graph).graph, { x0: [3], limit: [] });
    const loops = plan.nodes.filter((n) => n.op === 'Loop');
    expect(loops.length).toBe(1);
    expect(plan.nodes.some((n) => n.outputs.includes(loops[0]!.inputs[1]!))).toBe(true); // its condition: computed here
    expect(plan.nodes.at(-1)!.op).toBe('Concat'); // first step ++ the rest's scan output
  });

  it('an endless Loop and one too long to unroll are refused at plan time', async () => {
    const m = await importOnnx(endlessLoop().bytes);
    expect(() => specialize(optimize(m.graph).graph, { x0: [1] })).toThrow(/would not terminate/);
    const long = await importOnnx(constantTripLoop(rng, 2000).bytes);
    expect(() => specialize(optimize(long.graph).graph, { x0: [4], w: [4] })).toThrow(/at most 4096/);
  });

  it('nested loops unroll together (7 x 9 additions) but not past the plan-size bound', async () => {
    const small = nestedCountingLoops(7, 9);
    const { plan, computed } = await lowered(small, []);
    expect(plan.nodes.some((n) => n.op === 'Loop')).toBe(false);
    expect(Array.from(computed.x_final!.data as Float32Array)).toEqual([0.5 + 63]);
    const big = await importOnnx(nestedCountingLoops(300, 300).bytes);
    expect(() => specialize(optimize(big.graph).graph, { x0: [1] })).toThrow(/past 65536 nodes/);
    // The CPU runs such loops nested.
    const cpu = await runModelCpu(nestedCountingLoops(40, 50).bytes, { x0: tensorFromNumbers('float32', [1], [0]) });
    expect(Array.from(cpu.x_final!.data as Float32Array)).toEqual([2000]);
  });

  it('the CPU session keeps control flow nested (specialize with controlFlow: keep)', async () => {
    const m = await importOnnx(constantTripLoop(rng, 3).bytes);
    const plan = specialize(optimize(m.graph).graph, { x0: [4], w: [4] }, undefined, { controlFlow: 'keep' });
    expect(plan.nodes.map((n) => n.op)).toContain('Loop');
  });
});
