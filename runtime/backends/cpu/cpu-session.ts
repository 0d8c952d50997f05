import type { Graph } from '../../ir/graph.js';
import { specialize } from '../../ir/passes/index.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import { runGraphCpu } from './executor.js';

/**
 * The CPU backend for one model: a plan (here: the graph specialized to the feed shapes, with every shape
 * computation folded) per shape signature, cached, then executed by the reference executor.
 */
export class CpuSession {
  readonly #graph: Graph;
  readonly #maxElements: number;
  readonly #plans = new Map<string, Graph>();
  readonly #maxLoopIterations: number | undefined;

  constructor(graph: Graph, opts: { maxElements?: number; maxLoopIterations?: number } = {}) {
    this.#graph = graph;
    this.#maxElements = opts.maxElements ?? DEFAULT_MAX_ELEMENTS;
    this.#maxLoopIterations = opts.maxLoopIterations;
  }

  planFor(feeds: Record<string, HostTensor>): Graph {
    const shapes: Record<string, number[]> = {};
    for (const i of this.#graph.inputs) if (feeds[i.name]) shapes[i.name] = feeds[i.name]!.shape;
    const key = JSON.stringify(this.#graph.inputs.map((i) => shapes[i.name] ?? null));
    let plan = this.#plans.get(key);
    if (!plan) {
      plan = specialize(this.#graph, shapes, this.#maxElements, { controlFlow: 'keep' });
      if (this.#plans.size >= 16) this.#plans.delete(this.#plans.keys().next().value!);
      this.#plans.set(key, plan);
    }
    return plan;
  }

  run(feeds: Record<string, HostTensor>, outputs: readonly string[]): Record<string, HostTensor> {
    const plan = this.planFor(feeds);
    const result: Record<string, HostTensor> = {};
    const computed = outputs.filter((o) => !(o in plan.initializers) && !(o in feeds));
    Object.assign(result, runGraphCpu(plan, feeds, computed, { maxElements: this.#maxElements, maxLoopIterations: this.#maxLoopIterations }));
    for (const o of outputs) {
      if (o in plan.initializers) result[o] = plan.initializers[o]!;
      else if (o in feeds) result[o] = feeds[o]!;
    }
    return result;
  }
}
