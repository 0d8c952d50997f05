import type { Graph } from '../graph.js';
import { replaceUses } from './rewire.js';

/**
 * Removes Identity nodes, and Dropout nodes that are inference no-ops (no mask output read, training_mode absent or
 * a constant false), by rewiring their readers to the input. A node whose output is a graph output stays (the
 * output name is part of the model's interface).
 */
export function removeIdentities(g: Graph, opts: { keepDropout?: boolean } = {}): Graph {
  const outputs = new Set(g.outputs.map((o) => o.name));
  const keep = [];
  for (const n of g.nodes) {
    const x = n.inputs[0];
    const y = n.outputs[0];
    if (!x || !y || outputs.has(y) || !isNoop(g, n) || (opts.keepDropout && n.op === 'Dropout')) {
      keep.push(n);
      continue;
    }
    replaceUses(g, y, x);
  }
  g.nodes = keep;
  return g;
}

function isNoop(g: Graph, n: Graph['nodes'][number]): boolean {
  if (n.domain !== '') return false;
  if (n.op === 'Identity') return true;
  if (n.op !== 'Dropout') return false;
  if (n.outputs[1]) return false; // the mask is read: keep the node
  const training = n.inputs[2];
  if (!training) return true;
  const t = g.initializers[training];
  // ratio 0 is a no-op even in training mode.
  const ratio = n.inputs[1] ? g.initializers[n.inputs[1]] : undefined;
  if (ratio && Number(ratio.data[0]) === 0) return true;
  return !!t && Number(t.data[0]) === 0;
}
