import { InvalidArgumentError } from '../../errors.js';
import type { Graph } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';
import { gpuKernelFor } from './kernels/index.js';
import { PLAN_TIME_OPS } from './support.js';

/**
 * Graph inputs whose VALUES a GPU plan needs, not just their shapes: a Reshape's target shape, Slice's starts,
 * Pad's pads, a Range's limit... fed at run time instead of stored in the model. A static plan fixes every shape
 * and dispatch, so such inputs are baked into the plan as constants and the plan is keyed by their values as well
 * as by the input shapes (the session's plan cache must do that; see bindValueInputs).
 *
 * A value is needed when a GPU kernel reads it on the host (GpuKernel.hostInputs) or a node without a kernel reads
 * it (an If's condition), directly or through the nodes computing it; a Shape or Size node needs only its input's
 * shape, so needs stop there. Only small integer inputs (shape arithmetic such as Range(0, n), Reshape targets,
 * Slice starts) are baked: the whole plan then folds them. Any other needed value, a float tensor whose maximum
 * becomes a length, is computed on the GPU and read back at a stage boundary (staged-plan.ts), so a plan is not
 * remade for every distinct tensor of data.
 */
const SMALL = 64;

export function valueInputs(g: Graph): string[] {
  const hostRead = new Set<string>();
  const folded = new Set<string>();
  const producer = new Map<string, (typeof g.nodes)[number]>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  for (const n of g.nodes) {
    const kernel = gpuKernelFor(n);
    n.inputs.forEach((v, i) => {
      if (!v) return;
      if (kernel?.hostInputs?.includes(i)) hostRead.add(v);
      else if (!kernel && !(n.domain === '' && PLAN_TIME_OPS.has(n.op))) folded.add(v); // Shape/Size read no values
    });
  }
  const close = (seed: Set<string>) => {
    const stack = [...seed];
    while (stack.length) {
      const p = producer.get(stack.pop()!);
      if (p && p.domain === '' && PLAN_TIME_OPS.has(p.op)) continue; // a Shape's value needs only its input's shape
      for (const v of p?.inputs ?? []) {
        if (v && !seed.has(v)) {
          seed.add(v);
          stack.push(v);
        }
      }
    }
    return seed;
  };
  close(hostRead);
  close(folded);
  const smallInt = (name: string) => {
    const i = g.inputs.find((x) => x.name === name);
    const n = i?.shape?.reduce<number>((a, d) => a * (typeof d === 'number' ? d : Infinity), 1) ?? Infinity;
    return (i?.dtype === 'int64' || i?.dtype === 'int32') && n <= SMALL;
  };
  return g.inputs
    .map((i) => i.name)
    .filter((name) => !(name in g.initializers) && (hostRead.has(name) || folded.has(name)) && smallInt(name));
}

/**
 * The graph with the `names` inputs turned into initializers holding their fed values, ready for specialize().
 * Plans made from it are valid only for those values: key them by `valueKey`.
 */
export function bindValueInputs(g: Graph, feeds: Readonly<Record<string, HostTensor>>, names: readonly string[]): Graph {
  if (!names.length) return g;
  const initializers = { ...g.initializers };
  for (const name of names) {
    const t = feeds[name];
    if (!t) throw new InvalidArgumentError(`Input '${name}' was not provided; its value shapes the model's computation.`, { input: name });
    initializers[name] = t;
  }
  const baked = new Set(names);
  return { ...g, inputs: g.inputs.filter((i) => !baked.has(i.name)), initializers };
}

/** A plan-cache key part for the baked inputs' values. */
export function valueKey(feeds: Readonly<Record<string, HostTensor>>, names: readonly string[]): string {
  return names.map((n) => `${n}=${feeds[n] ? Array.from(feeds[n]!.data as ArrayLike<unknown>, String).join(',') : ''}`).join(';');
}
