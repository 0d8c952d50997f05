import { DTypeError, InvalidArgumentError, ShapeError } from '../runtime/errors.js';
import type { Dim, ValueInfo } from '../runtime/ir/graph.js';
import { Tensor } from './tensor.js';
import { checkElementType, nonTensorFeed, type FedValue } from './values.js';
import { kindOf } from '../runtime/ir/value.js';

/**
 * Checks user feeds against the model's inputs before anything runs: names, presence, dtype, rank, fixed dims, and
 * that one symbolic dim (e.g. 'batch') has one value across all inputs. Errors say what was expected.
 */
export function validateFeeds(inputs: readonly ValueInfo[], feeds: unknown): Record<string, FedValue> {
  if (!feeds || typeof feeds !== 'object' || feeds instanceof Tensor || Array.isArray(feeds)) {
    throw new InvalidArgumentError(`session.run expects an object of named tensors, e.g. { ${inputs[0]?.name ?? 'input'}: tensor }.`);
  }
  const expected = new Map(inputs.map((i) => [i.name, i]));
  const names = inputs.map((i) => `'${i.name}'`).join(', ');
  for (const k of Object.keys(feeds)) {
    if (!expected.has(k)) throw new InvalidArgumentError(`Unknown input '${k}'. This model's inputs are ${names}.`, { input: k });
  }
  const bound = new Map<string, number>();
  const out: Record<string, FedValue> = {};
  for (const info of inputs) {
    const v = (feeds as Record<string, unknown>)[info.name];
    if (v === undefined) throw new InvalidArgumentError(`Missing input '${info.name}'. This model's inputs are ${names}.`, { input: info.name });
    // Sequences and optionals (values.ts): arrays of Tensors, a Tensor or null.
    if (kindOf(info) !== 'tensor') {
      out[info.name] = nonTensorFeed(info, v, (t, where, shaped) => {
        const h = t.gpuFeed() ?? t.toHost();
        checkElementType(info, h, where);
        if (shaped && info.shape) checkShape(info.name, info.shape, [...h.shape], bound);
        return h;
      });
      continue;
    }
    if (Array.isArray(v) || v === null) throw new InvalidArgumentError(`Input '${info.name}' is a tensor; it must be fed a Tensor, not ${v === null ? 'null' : 'an array'}.`, { input: info.name });
    if (!(v instanceof Tensor)) throw new InvalidArgumentError(`Input '${info.name}' must be a Tensor.`, { input: info.name });
    const t = v.gpuFeed() ?? v.toHost(); // throws DisposedTensorError for a disposed tensor
    if (t.dtype !== info.dtype) {
      throw new DTypeError(`Input '${info.name}' must be ${info.dtype}, got ${t.dtype}.`, { input: info.name, expected: info.dtype, got: t.dtype });
    }
    if (info.shape) checkShape(info.name, info.shape, [...t.shape], bound);
    out[info.name] = t;
  }
  return out;
}

function checkShape(name: string, want: readonly Dim[], got: readonly number[], bound: Map<string, number>): void {
  const fmt = `[${want.join(', ')}]`;
  if (want.length !== got.length) {
    throw new ShapeError(`Input '${name}' must have rank ${want.length} ${fmt}, got dims [${got.join(', ')}].`, { input: name, expected: [...want], got: [...got] });
  }
  want.forEach((d, i) => {
    const g = got[i]!;
    if (typeof d === 'number') {
      if (d !== g) throw new ShapeError(`Input '${name}' dimension ${i} must be ${d} ${fmt}, got dims [${got.join(', ')}].`, { input: name, expected: [...want], got: [...got] });
    } else {
      const prev = bound.get(d);
      if (prev !== undefined && prev !== g) {
        throw new ShapeError(`Dimension '${d}' is ${prev} in one input but ${g} in input '${name}'; inputs must agree.`, { input: name, dim: d });
      }
      bound.set(d, g);
    }
  });
}
