import type onnx from 'onnx-proto';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { graphAttr, int, ints, model, vi, type NodeSpec } from '../importer/model-builder.js';
import { tensorProto } from './ort-single-node.js';
import { Rng } from './random.js';

/**
 * Hand-built ONNX models with If/Loop/Scan, nested and reading outer-scope values, shared by the CPU reference
 * tests (against onnxruntime-node) and the WebGPU tests (against the CPU backend).
 */

const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;

type GraphProto = onnx.onnx.IGraphProto;

export function body(name: string, nodes: NodeSpec[], inputs: onnx.onnx.IValueInfoProto[], outputs: onnx.onnx.IValueInfoProto[], initializers: Record<string, HostTensor> = {}): GraphProto {
  return {
    name,
    node: nodes.map((n, i) => ({ opType: n.op, input: n.inputs, output: n.outputs, name: n.name ?? `${name}_n${i}`, domain: '', attribute: n.attrs ?? [] })),
    input: inputs,
    output: outputs,
    initializer: Object.entries(initializers).map(([k, t]) => tensorProto(k, t)),
  };
}

const f32 = (shape: number[], values: number[]) => tensorFromNumbers('float32', shape, values);
const i64 = (shape: number[], values: number[]) => tensorFromNumbers('int64', shape, values);
const bool = (v: boolean) => tensorFromNumbers('bool', [], [v ? 1 : 0]);

export function randomF32(rng: Rng, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return f32(shape, Array.from({ length: n }, () => rng.uniform(-1, 1)));
}

export interface CfCase {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
}

/**
 * A Loop (trip count from the input `n`, condition input true) whose body holds an If on the iteration number's
 * parity; the branches read `w` (a graph input) and `scale` (an initializer) from two scopes out.
 *   x_{i+1} = i even ? x_i + w : x_i * scale;  scan output: x_{i+1}
 */
export function loopWithNestedIf(rng: Rng, trips: number): CfCase {
  const thenB = body('then', [{ op: 'Add', inputs: ['x_in', 'w'], outputs: ['then_out'] }], [], [vi('then_out', FLOAT, [2, 3])]);
  const elseB = body('else', [{ op: 'Mul', inputs: ['x_in', 'scale'], outputs: ['else_out'] }], [], [vi('else_out', FLOAT, [2, 3])]);
  const loopBody = body(
    'loop_body',
    [
      { op: 'Mod', inputs: ['i', 'two'], outputs: ['parity'] },
      { op: 'Equal', inputs: ['parity', 'zero'], outputs: ['even'] },
      { op: 'If', inputs: ['even'], outputs: ['x_out'], attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] },
      { op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
      { op: 'Identity', inputs: ['x_out'], outputs: ['scan_out'] },
    ],
    [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('x_in', FLOAT, [2, 3])],
    [vi('cond_out', BOOL, []), vi('x_out', FLOAT, [2, 3]), vi('scan_out', FLOAT, [2, 3])],
    { two: i64([], [2]), zero: i64([], [0]) },
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['n', 'go', 'x0'], outputs: ['x_final', 'xs'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('n', INT64, []), vi('x0', FLOAT, [2, 3]), vi('w', FLOAT, [2, 3])],
    outputs: [vi('x_final', FLOAT, [2, 3]), vi('xs', FLOAT, [trips, 2, 3])],
    initializers: [tensorProto('go', bool(true)), tensorProto('scale', f32([], [0.5]))],
  });
  return { name: 'Loop{If} with outer values', bytes, feeds: { n: i64([], [trips]), x0: randomF32(rng, [2, 3]), w: randomF32(rng, [2, 3]) } };
}

/**
 * A Loop with no trip count whose body decides when to stop: x doubles until its sum passes `limit` (an outer
 * value). The scan output collects the running sums.
 */
export function loopUntil(): CfCase {
  const loopBody = body(
    'until_body',
    [
      { op: 'Mul', inputs: ['x_in', 'two'], outputs: ['x_out'] },
      { op: 'ReduceSum', inputs: ['x_out'], outputs: ['s'], attrs: [int('keepdims', 0)] },
      { op: 'Less', inputs: ['s', 'limit'], outputs: ['cond_out'] },
      { op: 'Identity', inputs: ['s'], outputs: ['sums'] },
    ],
    [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('x_in', FLOAT, [3])],
    [vi('cond_out', BOOL, []), vi('x_out', FLOAT, [3]), vi('sums', FLOAT, [])],
    { two: f32([], [2]) },
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['', '', 'x0'], outputs: ['x_final', 'sums_all'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [3]), vi('limit', FLOAT, [])],
    outputs: [vi('x_final', FLOAT, [3]), vi('sums_all', FLOAT, ['iterations'])],
  });
  return { name: 'Loop without M, stopped by its body', bytes, feeds: { x0: f32([3], [0.25, 0.5, 1]), limit: f32([], [50]) } };
}

/**
 * Scan (opset 11) over the rows of `seq` [5, 3] read backwards, a running state [3]; its body holds a Loop (trip
 * count 2, an outer initializer of the main graph) that adds `bias` (a graph input) to the state twice. The scan
 * output is stacked along axis 1, reversed: [3, 5].
 */
export function scanWithNestedLoop(rng: Rng): CfCase {
  const inner = body(
    'inner_loop',
    [
      { op: 'Add', inputs: ['acc_in', 'bias'], outputs: ['acc_out'] },
      { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
    ],
    [vi('j', INT64, []), vi('c_in', BOOL, []), vi('acc_in', FLOAT, [3])],
    [vi('c_out', BOOL, []), vi('acc_out', FLOAT, [3])],
  );
  const scanBody = body(
    'scan_body',
    [
      { op: 'Add', inputs: ['state_in', 'row'], outputs: ['summed'] },
      { op: 'Loop', inputs: ['two_trips', '', 'summed'], outputs: ['state_out'], attrs: [graphAttr('body', inner)] },
      { op: 'Mul', inputs: ['state_out', 'row'], outputs: ['step_out'] },
    ],
    [vi('state_in', FLOAT, [3]), vi('row', FLOAT, [3])],
    [vi('state_out', FLOAT, [3]), vi('step_out', FLOAT, [3])],
  );
  const bytes = model({
    opset: 11,
    irVersion: 6,
    nodes: [
      {
        op: 'Scan',
        inputs: ['s0', 'seq'],
        outputs: ['s_final', 'steps'],
        attrs: [graphAttr('body', scanBody), int('num_scan_inputs', 1), ints('scan_input_directions', [1]), ints('scan_output_axes', [1]), ints('scan_output_directions', [1])],
      },
    ],
    inputs: [vi('s0', FLOAT, [3]), vi('seq', FLOAT, [5, 3]), vi('bias', FLOAT, [3])],
    outputs: [vi('s_final', FLOAT, [3]), vi('steps', FLOAT, [3, 5])],
    initializers: [tensorProto('two_trips', i64([], [2]))],
  });
  return { name: 'Scan{Loop} reversed, output axis 1', bytes, feeds: { s0: randomF32(rng, [3]), seq: randomF32(rng, [5, 3]), bias: randomF32(rng, [3]) } };
}

/** Scan-8 (batch axis 0, no sequence_lens) with a batch of 2: a running sum over 3 steps. */
export function scan8Batch(rng: Rng): CfCase {
  const scanBody = body(
    'sum_body',
    [
      { op: 'Add', inputs: ['sum_in', 'next'], outputs: ['sum_out'] },
      { op: 'Identity', inputs: ['sum_out'], outputs: ['scan_out'] },
    ],
    [vi('sum_in', FLOAT, [2]), vi('next', FLOAT, [2])],
    [vi('sum_out', FLOAT, [2]), vi('scan_out', FLOAT, [2])],
  );
  const bytes = model({
    opset: 8,
    irVersion: 3,
    nodes: [{ op: 'Scan', inputs: ['', 'init', 'xs'], outputs: ['y', 'z'], attrs: [graphAttr('body', scanBody), int('num_scan_inputs', 1), ints('directions', [1])] }],
    inputs: [vi('init', FLOAT, [2, 2]), vi('xs', FLOAT, [2, 3, 2])],
    outputs: [vi('y', FLOAT, [2, 2]), vi('z', FLOAT, [2, 3, 2])],
  });
  return { name: 'Scan-8 batch of 2, reversed input', bytes, feeds: { init: randomF32(rng, [2, 2]), xs: randomF32(rng, [2, 3, 2]) } };
}

/**
 * An If on a graph input whose branches give different shapes ([2] vs [3]) and read an outer value; its output
 * shape is only known per run.
 */
export function ifDifferentShapes(cond: boolean): CfCase {
  const thenB = body('then', [{ op: 'Add', inputs: ['a', 'a'], outputs: ['t'] }], [], [vi('t', FLOAT, [2])]);
  const elseB = body('else', [{ op: 'Concat', inputs: ['a', 'one'], outputs: ['e'], attrs: [int('axis', 0)] }], [], [vi('e', FLOAT, [3])], { one: f32([1], [1]) });
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] }],
    inputs: [vi('c', BOOL, []), vi('a', FLOAT, [2])],
    outputs: [vi('y', FLOAT, ['n'])],
  });
  return { name: `If with differently shaped branches (cond ${cond})`, bytes, feeds: { c: bool(cond), a: f32([2], [1.5, -2]) } };
}

/**
 * A Loop that never stops: no trip count, condition passed through as true. `empty`: the body has no node at all
 * (its outputs are its inputs), the cheapest iteration there is.
 */
export function endlessLoop(empty = false): CfCase {
  const loopBody = empty
    ? body('forever', [], [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('x_in', FLOAT, [1])], [vi('cond_in', BOOL, []), vi('x_in', FLOAT, [1])])
    : body(
      'forever',
      [
        { op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
        { op: 'Add', inputs: ['x_in', 'x_in'], outputs: ['x_out'] },
      ],
      [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('x_in', FLOAT, [1])],
      [vi('cond_out', BOOL, []), vi('x_out', FLOAT, [1])],
    );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['', 'go', 'x0'], outputs: ['x_final'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [1])],
    outputs: [vi('x_final', FLOAT, [1])],
    initializers: [tensorProto('go', bool(true))],
  });
  return { name: 'endless Loop', bytes, feeds: { x0: f32([1], [1]) } };
}

/** A Loop with a constant trip count (an initializer) and constant-true condition: unrollable at plan time. */
export function constantTripLoop(rng: Rng, trips: number): CfCase {
  const loopBody = body(
    'fixed_body',
    [
      { op: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] },
      { op: 'Cast', inputs: ['i'], outputs: ['fi'], attrs: [int('to', FLOAT)] },
      { op: 'Mul', inputs: ['w', 'fi'], outputs: ['wi'] },
      { op: 'Add', inputs: ['x_in', 'wi'], outputs: ['x_out'] },
      { op: 'Relu', inputs: ['x_out'], outputs: ['scan_out'] },
    ],
    [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('x_in', FLOAT, [4])],
    [vi('cond_out', BOOL, []), vi('x_out', FLOAT, [4]), vi('scan_out', FLOAT, [4])],
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['m', 'go', 'x0'], outputs: ['x_final', 'xs'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [4]), vi('w', FLOAT, [4])],
    outputs: [vi('x_final', FLOAT, [4]), vi('xs', FLOAT, [trips, 4])],
    initializers: [tensorProto('m', i64([], [trips])), tensorProto('go', bool(true))],
  });
  return { name: `Loop with constant trip count ${trips}`, bytes, feeds: { x0: randomF32(rng, [4]), w: randomF32(rng, [4]) } };
}

/**
 * A while-loop whose condition the body computes from a counter and the iteration number, never from data: no trip
 * count (or a larger one), a carried counter k starting at 0 (an initializer), `cond = k + 1 < 5 && i < stop`;
 * x_{i+1} = 1.5 x_i + w with `w` a graph input. Runs min(5, stop + 1) iterations; WebGPU unrolls it.
 */
export function loopCountedByBody(rng: Rng, stop: number): CfCase {
  const loopBody = body(
    'counted_body',
    [
      { op: 'Add', inputs: ['k_in', 'one'], outputs: ['k_out'] },
      { op: 'Less', inputs: ['k_out', 'five'], outputs: ['below'] },
      { op: 'Less', inputs: ['i', 'stop'], outputs: ['early'] },
      { op: 'And', inputs: ['below', 'early'], outputs: ['cond_out'] },
      { op: 'Mul', inputs: ['x_in', 'factor'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'w'], outputs: ['x_out'] },
      { op: 'Identity', inputs: ['x_out'], outputs: ['scan_out'] },
    ],
    [vi('i', INT64, []), vi('cond_in', BOOL, []), vi('k_in', INT64, []), vi('x_in', FLOAT, [2])],
    [vi('cond_out', BOOL, []), vi('k_out', INT64, []), vi('x_out', FLOAT, [2]), vi('scan_out', FLOAT, [2])],
    { one: i64([], [1]), five: i64([], [5]), factor: f32([], [1.5]) },
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['m', '', 'k0', 'x0'], outputs: ['k_final', 'x_final', 'xs'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [2]), vi('w', FLOAT, [2])],
    outputs: [vi('k_final', INT64, []), vi('x_final', FLOAT, [2]), vi('xs', FLOAT, ['iterations', 2])],
    initializers: [tensorProto('m', i64([], [100])), tensorProto('k0', i64([], [0])), tensorProto('stop', i64([], [stop]))],
  });
  return { name: `Loop counted by its body (stop ${stop})`, bytes, feeds: { x0: randomF32(rng, [2]), w: randomF32(rng, [2]) } };
}

/**
 * A Loop whose trip count is computed from data: M = Cast<int64>(ReduceMax(counts)); x_{i+1} = x_i + w (w read
 * from the main graph). WebGPU reads M back at a stage boundary and plans the unrolled rest per value.
 */
export function loopComputedTrips(counts: number[], rng: Rng): CfCase {
  const loopBody = body(
    'computed_body',
    [
      { op: 'Add', inputs: ['x_in', 'w'], outputs: ['x_out'] },
      { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
    ],
    [vi('i', INT64, []), vi('c_in', BOOL, []), vi('x_in', FLOAT, [3])],
    [vi('c_out', BOOL, []), vi('x_out', FLOAT, [3])],
  );
  const bytes = model({
    opset: 13,
    nodes: [
      { op: 'ReduceMax', inputs: ['counts'], outputs: ['top'], attrs: [int('keepdims', 0)] },
      { op: 'Cast', inputs: ['top'], outputs: ['m'], attrs: [int('to', INT64)] },
      { op: 'Loop', inputs: ['m', '', 'x0'], outputs: ['x_final'], attrs: [graphAttr('body', loopBody)] },
    ],
    inputs: [vi('counts', FLOAT, [counts.length]), vi('x0', FLOAT, [3]), vi('w', FLOAT, [3])],
    outputs: [vi('x_final', FLOAT, [3])],
  });
  return { name: `Loop with a computed trip count (${Math.max(...counts)})`, bytes, feeds: { counts: f32([counts.length], counts), x0: randomF32(rng, [3]), w: randomF32(rng, [3]) } };
}

/**
 * Data-dependent branching inside an unrolled Loop: three iterations of
 *   x_{i+1} = sum(x_i) > 0 ? relu(y_i) * 2 : y_i - 1,   y_i = x_i * scale  (scale a graph input)
 * The If's condition is computed from data every iteration, and its branches read y_i, a value of the Loop body.
 */
export function loopWithDataIf(x0: number[], scale: number): CfCase {
  const thenB = body('pos', [{ op: 'Relu', inputs: ['y'], outputs: ['r'] }, { op: 'Mul', inputs: ['r', 'two'], outputs: ['t'] }], [], [vi('t', FLOAT, [3])], { two: f32([], [2]) });
  const elseB = body('neg', [{ op: 'Sub', inputs: ['y', 'one'], outputs: ['e'] }], [], [vi('e', FLOAT, [3])], { one: f32([], [1]) });
  const loopBody = body(
    'branching_body',
    [
      { op: 'Mul', inputs: ['x_in', 'scale'], outputs: ['y'] },
      { op: 'ReduceSum', inputs: ['x_in'], outputs: ['s'], attrs: [int('keepdims', 0)] },
      { op: 'Greater', inputs: ['s', 'zero'], outputs: ['positive'] },
      { op: 'If', inputs: ['positive'], outputs: ['x_out'], attrs: [graphAttr('then_branch', thenB), graphAttr('else_branch', elseB)] },
      { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
    ],
    [vi('i', INT64, []), vi('c_in', BOOL, []), vi('x_in', FLOAT, [3])],
    [vi('c_out', BOOL, []), vi('x_out', FLOAT, [3])],
    { zero: f32([], [0]) },
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['m', '', 'x0'], outputs: ['x_final'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [3]), vi('scale', FLOAT, [])],
    outputs: [vi('x_final', FLOAT, [3])],
    initializers: [tensorProto('m', i64([], [3]))],
  });
  return { name: `Loop{If on data} (x0 ${x0.join(',')})`, bytes, feeds: { x0: f32([3], x0), scale: f32([], [scale]) } };
}

/** Loop(outer trips) { Loop(inner trips) { x + 1 } }: each loop alone unrolls, together they multiply. */
export function nestedCountingLoops(outer: number, inner: number): CfCase {
  const innerBody = body(
    'inner_body',
    [{ op: 'Identity', inputs: ['ci'], outputs: ['co'] }, { op: 'Add', inputs: ['v_in', 'one'], outputs: ['v_out'] }],
    [vi('j', INT64, []), vi('ci', BOOL, []), vi('v_in', FLOAT, [1])],
    [vi('co', BOOL, []), vi('v_out', FLOAT, [1])],
    { one: f32([1], [1]) },
  );
  const outerBody = body(
    'outer_body',
    [
      { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
      { op: 'Loop', inputs: ['m_inner', '', 'u_in'], outputs: ['u_out'], attrs: [graphAttr('body', innerBody)] },
    ],
    [vi('i', INT64, []), vi('c_in', BOOL, []), vi('u_in', FLOAT, [1])],
    [vi('c_out', BOOL, []), vi('u_out', FLOAT, [1])],
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['m_outer', '', 'x0'], outputs: ['x_final'], attrs: [graphAttr('body', outerBody)] }],
    inputs: [vi('x0', FLOAT, [1])],
    outputs: [vi('x_final', FLOAT, [1])],
    initializers: [tensorProto('m_outer', i64([], [outer])), tensorProto('m_inner', i64([], [inner]))],
  });
  return { name: `nested Loops ${outer} x ${inner}`, bytes, feeds: { x0: f32([1], [0.5]) } };
}

/**
 * Scan (opset 16) with two scan inputs on different axes and directions and two scan outputs on different axes:
 * a [4, 3] scanned along axis 0 forwards, b [3, 4] along axis 1 backwards (axis -1), no state; outputs
 * a_t * b_t stacked on axis 0 (reversed) and a_t + b_t stacked on axis -1.
 */
export function scanAxes(rng: Rng): CfCase {
  const b = body(
    'pair_body',
    [
      { op: 'Mul', inputs: ['at', 'bt'], outputs: ['prod'] },
      { op: 'Add', inputs: ['at', 'bt'], outputs: ['sum'] },
    ],
    [vi('at', FLOAT, [3]), vi('bt', FLOAT, [3])],
    [vi('prod', FLOAT, [3]), vi('sum', FLOAT, [3])],
  );
  const bytes = model({
    opset: 16,
    nodes: [
      {
        op: 'Scan',
        inputs: ['a', 'b'],
        outputs: ['prods', 'sums'],
        attrs: [
          graphAttr('body', b), int('num_scan_inputs', 2), ints('scan_input_axes', [0, -1]), ints('scan_input_directions', [0, 1]),
          ints('scan_output_axes', [0, -1]), ints('scan_output_directions', [1, 0]),
        ],
      },
    ],
    inputs: [vi('a', FLOAT, [4, 3]), vi('b', FLOAT, [3, 4])],
    outputs: [vi('prods', FLOAT, [4, 3]), vi('sums', FLOAT, [3, 4])],
  });
  return { name: 'Scan with two inputs and outputs on different axes and directions', bytes, feeds: { a: randomF32(rng, [4, 3]), b: randomF32(rng, [3, 4]) } };
}

/** A while-loop counting x up by 1 while x < limit, `limit` a graph input: its condition is data every iteration. */
export function loopCountTo(limit: number): CfCase {
  const loopBody = body(
    'count_body',
    [
      { op: 'Add', inputs: ['x_in', 'one'], outputs: ['x_out'] },
      { op: 'Less', inputs: ['x_out', 'limit'], outputs: ['c_out'] },
      { op: 'Mul', inputs: ['x_out', 'x_out'], outputs: ['sq'] },
    ],
    [vi('i', INT64, []), vi('c_in', BOOL, []), vi('x_in', FLOAT, [1])],
    [vi('c_out', BOOL, []), vi('x_out', FLOAT, [1]), vi('sq', FLOAT, [1])],
    { one: f32([1], [1]) },
  );
  const bytes = model({
    opset: 13,
    nodes: [{ op: 'Loop', inputs: ['', '', 'x0'], outputs: ['x_final', 'squares'], attrs: [graphAttr('body', loopBody)] }],
    inputs: [vi('x0', FLOAT, [1]), vi('limit', FLOAT, [1])],
    outputs: [vi('x_final', FLOAT, [1]), vi('squares', FLOAT, ['iterations', 1])],
  });
  return { name: `while x < ${limit}`, bytes, feeds: { x0: f32([1], [0]), limit: f32([1], [limit]) } };
}
