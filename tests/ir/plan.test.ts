import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../runtime/ir/graph.js';
import { planMemory, type MemoryPlan } from '../../runtime/ir/plan.js';

/** A hand-built, already-specialized graph: float32 values with given element counts. */
function graphOf(nodes: [string, string[], string, number][], output: string): Graph {
  const g: Graph = { name: 'g', inputs: [{ name: 'x', dtype: 'float32', shape: [256] }], outputs: [{ name: output, dtype: 'float32' }], initializers: {}, nodes: [], values: {} };
  for (const [op, inputs, out, n] of nodes) {
    g.nodes.push({ name: out, op, domain: '', inputs, outputs: [out], attrs: {} } as Node);
    g.values[out] = { name: out, dtype: 'float32', shape: [n] };
  }
  return g;
}

function assertNoOverlap(p: MemoryPlan): void {
  const vs = Object.values(p.values);
  for (const a of vs) {
    expect(a.offset % 4).toBe(0);
    expect(a.offset + a.bytes).toBeLessThanOrEqual(p.arenaBytes);
    for (const b of vs) {
      if (a === b || a.aliasOf === b.name || b.aliasOf === a.name || (a.aliasOf && a.aliasOf === b.aliasOf)) continue;
      const timeOverlap = a.first <= b.last && b.first <= a.last;
      const memOverlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
      expect(timeOverlap && memOverlap, `${a.name} and ${b.name} are live together and share bytes`).toBe(false);
    }
  }
  expect(p.arenaBytes).toBeGreaterThanOrEqual(p.lowerBound);
}

describe('planMemory', () => {
  const chain = graphOf([['Relu', ['x'], 'a', 256], ['Sigmoid', ['a'], 'b', 256], ['Tanh', ['b'], 'c', 256], ['Neg', ['c'], 'y', 256]], 'y');

  it('ping-pongs a chain between two slots, and uses one slot in place', () => {
    const p = planMemory(chain, { alignment: 256 });
    assertNoOverlap(p);
    expect(p.arenaBytes).toBe(2 * 1024);
    const q = planMemory(chain, { alignment: 256, inPlaceInput: (n) => (n.op === 'Relu' ? -1 : 0) });
    assertNoOverlap(q);
    expect(q.arenaBytes).toBe(1024);
    expect(q.values.b!.aliasOf).toBe('a');
  });

  it('keeps graph outputs alive to the end and never reuses an input still read later', () => {
    const g = graphOf([['Relu', ['x'], 'a', 100], ['Exp', ['a'], 'b', 100], ['Add', ['a', 'b'], 'c', 100], ['Neg', ['c'], 'y', 100]], 'y');
    const p = planMemory(g, { alignment: 4, inPlaceInput: () => 0 });
    assertNoOverlap(p);
    expect(p.values.b!.aliasOf).toBeUndefined(); // 'a' is still read by Add
    expect(p.values.y!.last).toBe(3);
  });

  it('sits at the liveness lower bound on random DAGs', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let trial = 0; trial < 40; trial++) {
      const spec: [string, string[], string, number][] = [];
      const names = ['x'];
      for (let i = 0; i < 12; i++) {
        const k = 1 + Math.floor(rnd() * 2);
        const ins = Array.from({ length: k }, () => names[Math.floor(rnd() * names.length)]!);
        spec.push(['Add', ins, `v${i}`, 1 + Math.floor(rnd() * 500)]);
        names.push(`v${i}`);
      }
      const p = planMemory(graphOf(spec, 'v11'), { alignment: 4 });
      assertNoOverlap(p);
      expect(p.arenaBytes).toBeLessThanOrEqual(p.lowerBound * 1.5);
    }
  });
});
