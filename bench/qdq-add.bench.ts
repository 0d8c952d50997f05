import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { DType } from '../runtime/ir/dtype.js';
import type { Graph, Node } from '../runtime/ir/graph.js';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { tensorFromNumbers, type HostTensor } from '../runtime/ir/tensor.js';
import { buildGraph, node } from '../tests/helpers/ir-builder.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * GPU time of mobilenet_v2's ten residual Adds (its shapes at 224 x 224, uint8 QDQ parameters of the quantizer's
 * kind) three ways, profiled alternately and summed over every dispatch of each plan:
 *   unfused: DequantizeLinear x2 -> Add -> QuantizeLinear as written (four dispatches per Add, fuse: false);
 *   QdqAdd: the same graph through fuseForGpu (one dispatch per Add, one code per word);
 *   QdqAdd c4: a, b and y in the packed layout "c4" (a word per four channels: the layout H1's pass gives it).
 * Prints the medians and the ratios:
 *
 *   QDQ_ADD_RUNS=9 npx vitest bench --run bench/qdq-add.bench.ts
 */

const RUNS = Number(process.env.QDQ_ADD_RUNS ?? '9');
const SHAPES = [[1, 24, 56, 56], [1, 32, 28, 28], [1, 32, 28, 28], [1, 64, 14, 14], [1, 64, 14, 14], [1, 64, 14, 14],
  [1, 96, 14, 14], [1, 96, 14, 14], [1, 160, 7, 7], [1, 160, 7, 7]];
const P = { sa: 0.0473, za: 131, sb: 0.0391, zb: 118, sy: 0.0612, zy: 127 };

let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
const feeds: Record<string, Record<string, HostTensor>> = {};

const scalars = (i: number): Record<string, HostTensor> => ({
  [`sa${i}`]: tensorFromNumbers('float32', [], [P.sa]), [`za${i}`]: tensorFromNumbers('uint8', [], [P.za]),
  [`sb${i}`]: tensorFromNumbers('float32', [], [P.sb]), [`zb${i}`]: tensorFromNumbers('uint8', [], [P.zb]),
  [`sy${i}`]: tensorFromNumbers('float32', [], [P.sy]), [`zy${i}`]: tensorFromNumbers('uint8', [], [P.zy]),
});

/** The ten chains as the model writes them. */
function chains(): Graph {
  return buildGraph({
    inputs: SHAPES.flatMap((s, i) => [[`a${i}`, 'uint8', s], [`b${i}`, 'uint8', s]] as [string, DType, number[]][]),
    initializers: Object.assign({}, ...SHAPES.map((_, i) => scalars(i))),
    nodes: SHAPES.flatMap((_, i) => [
      node('DequantizeLinear', [`a${i}`, `sa${i}`, `za${i}`], [`af${i}`]),
      node('DequantizeLinear', [`b${i}`, `sb${i}`, `zb${i}`], [`bf${i}`]),
      node('Add', [`af${i}`, `bf${i}`], [`s${i}`]),
      node('QuantizeLinear', [`s${i}`, `sy${i}`, `zy${i}`], [`y${i}`]),
    ]),
    outputs: SHAPES.map((_, i) => `y${i}`),
  });
}

/** The ten QdqAdd nodes with a, b and y packed c4 (uint32 [N, C / 4, H, W]). */
function packedAdds(): Graph {
  const g: Graph = { name: 'qdq-add-c4', inputs: [], outputs: [], initializers: {}, nodes: [], values: {} };
  const c4 = { type: 'string', value: 'c4' } as const;
  const u8 = { type: 'string', value: 'uint8' } as const;
  SHAPES.forEach((s, i) => {
    const words = [s[0]!, s[1]! / 4, ...s.slice(2)];
    for (const v of [`a${i}`, `b${i}`, `y${i}`]) g.values[v] = { name: v, dtype: 'uint32', shape: words };
    for (const [k, t] of Object.entries(scalars(i))) {
      g.initializers[k] = t;
      g.values[k] = { name: k, dtype: t.dtype, shape: [] };
    }
    g.inputs.push(g.values[`a${i}`]!, g.values[`b${i}`]!);
    g.outputs.push(g.values[`y${i}`]!);
    const n: Node = {
      name: `add${i}`, op: 'QdqAdd', domain: '', inputs: [`a${i}`, `sa${i}`, `za${i}`, `b${i}`, `sb${i}`, `zb${i}`, `sy${i}`, `zy${i}`], outputs: [`y${i}`],
      attrs: { a_layout: c4, a_qtype: u8, b_layout: c4, b_qtype: u8, y_layout: c4, y_qtype: u8 },
    };
    g.nodes.push(n);
  });
  return g;
}

const codes = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 256);

beforeAll(async () => {
  res = await gpuForTests();
  const g = chains();
  plans.unfused = await GpuGraphPlan.create(res, g, { fuse: false });
  plans.QdqAdd = await GpuGraphPlan.create(res, g);
  plans['QdqAdd c4'] = await GpuGraphPlan.create(res, packedAdds());
  feeds.unfused = {};
  feeds['QdqAdd c4'] = {};
  SHAPES.forEach((s, i) => {
    const n = s.reduce((x, y) => x * y, 1);
    for (const [k, seed] of [[`a${i}`, 1], [`b${i}`, 2]] as const) {
      feeds.unfused![k] = tensorFromNumbers('uint8', s, codes(n, seed + i));
      // Four arbitrary codes per word: the kernel's work does not depend on the values.
      feeds['QdqAdd c4']![k] = tensorFromNumbers('uint32', [s[0]!, s[1]! / 4, ...s.slice(2)], codes(n / 4, seed + i).map((v) => v * 0x01010101));
    }
  });
  feeds.QdqAdd = feeds.unfused;
  const times: Record<string, number[]> = { unfused: [], QdqAdd: [], 'QdqAdd c4': [] };
  for (const [k, p] of Object.entries(plans)) await p.profile(feeds[k]!);
  for (let r = 0; r < RUNS; r++) {
    for (const [k, p] of Object.entries(plans)) times[k]!.push((await p.profile(feeds[k]!)).reduce((t, d) => t + d.ns, 0) / 1e6);
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const u = med(times.unfused!);
  console.log(`mobilenet_v2's 10 residual Adds, GPU ms, median of ${RUNS} alternating profiles: ${Object.entries(times).map(([k, v]) => `${k} ${med(v).toFixed(1)} (${(med(v) / u).toFixed(2)}x)`).join(', ')}`);
  console.log(`  dispatches: ${Object.entries(plans).map(([k, p]) => `${k} ${p.report().dispatches}`).join(', ')}`);
}, 600_000);
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe("mobilenet_v2's residual Adds: unfused vs QdqAdd vs QdqAdd c4", () => {
  bench('QdqAdd (one more profiled run)', async () => {
    await plans.QdqAdd!.profile(feeds.QdqAdd!);
  }, { iterations: 1, warmupIterations: 0, time: 0 });
});
