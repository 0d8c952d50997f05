import type { Graph } from '../../ir/graph.js';
import { specialize } from '../../ir/passes/index.js';
import { DEFAULT_MAX_ELEMENTS } from '../../ir/tensor.js';
import { isTensorValue, kindOf, type HostValue } from '../../ir/value.js';
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

  planFor(feeds: Record<string, HostValue>): Graph {
    const shapes: Record<string, number[]> = {};
    // Sequences and optionals (ir/value.ts) keep their declared element type: one plan serves every length.
    for (const i of this.#graph.inputs) {
      const v = feeds[i.name];
      if (isTensorValue(v) && kindOf(i) === 'tensor') shapes[i.name] = v.shape;
    }
    const key = JSON.stringify(this.#graph.inputs.map((i) => shapes[i.name] ?? null));
    let plan = this.#plans.get(key);
    if (!plan) {
      plan = specialize(this.#graph, shapes, this.#maxElements, { controlFlow: 'keep' });
      if (this.#plans.size >= 16) this.#plans.delete(this.#plans.keys().next().value!);
      this.#plans.set(key, plan);
    }
    return plan;
  }

  run(feeds: Record<string, HostValue>, outputs: readonly string[]): Record<string, HostValue> {
    const plan = this.planFor(feeds);
    const result: Record<string, HostValue> = {};
    const computed = outputs.filter((o) => !(o in plan.initializers) && !(o in feeds));
    Object.assign(result, runGraphCpu(plan, feeds, computed, { maxElements: this.#maxElements, maxLoopIterations: this.#maxLoopIterations }));
    for (const o of outputs) {
      if (o in plan.initializers) result[o] = plan.initializers[o]!;
      else if (o in feeds) result[o] = feeds[o]!;
    }
    return result;
  }
}
