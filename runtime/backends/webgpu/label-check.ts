import { InvalidArgumentError } from '../../errors.js';
import { attrInt, type Graph } from '../../ir/graph.js';
import { ignoreIndex } from '../../ir/ops/loss.js';
import { toNumbers } from '../../ir/dtype.js';
import type { HostTensor } from '../../ir/tensor.js';

/**
 * Class-index targets checked where they enter the GPU. A shader cannot throw, so an out-of-range class inside the
 * cross-entropy kernels would only show as a 0 term (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss) or a NaN
 * loss (the training CrossEntropyLoss). Targets almost always come from the host (a graph input fed with labels),
 * so the plan checks them there, before any upload, and throws the same InvalidArgumentError, with the same
 * message, as the CPU reference (runtime/backends/cpu/kernels/loss.ts, runtime/train/ops/losses.ts).
 *
 * Decision: a host-side check, not an error flag written by the shader and read back with the result. It costs
 * one pass over the labels (a few hundred integers per batch), needs no extra readback or buffer, and covers every
 * path a user takes (InferenceSession.run, FineTuner.fit). Not covered: targets computed inside the graph or fed
 * as GPU-resident tensors; there the kernels keep their documented behaviour (0 term, or NaN loss that the
 * trainer's NaN guard reports and skips).
 */

export interface LabelCheck {
  /** Graph input that holds the class indices. */
  input: string;
  op: string;
  node: string;
  classes: number;
  /** ignore_index: undefined where the op has none (every target must be a class). */
  ignore: number | undefined;
  /** Which CPU message to mirror: the training op (CrossEntropyLoss) words it differently. */
  training: boolean;
}

const INFERENCE_LOSSES = new Set(['NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss']);

/** The checks a plan of `g` needs: loss nodes whose integer target is a graph input. */
export function labelChecks(g: Graph): LabelCheck[] {
  const inputs = new Set(g.inputs.map((i) => i.name));
  const out: LabelCheck[] = [];
  for (const n of g.nodes) {
    const training = n.op === 'CrossEntropyLoss';
    if (!training && !INFERENCE_LOSSES.has(n.op)) continue;
    const [x, t] = n.inputs;
    if (!x || !t || !inputs.has(t)) continue;
    const tv = g.values[t];
    const classes = g.values[x]?.shape?.[1];
    if (!tv || tv.dtype.startsWith('float') || typeof classes !== 'number') continue;
    out.push({ input: t, op: n.op, node: n.name, classes, ignore: training ? attrInt(n, 'ignore_index', -100) : ignoreIndex(n), training });
  }
  return out;
}

/** Throws InvalidArgumentError (the CPU's message) for the first fed target outside [0, classes) and not ignored. */
export function checkLabels(checks: readonly LabelCheck[], feeds: Readonly<Record<string, HostTensor | undefined>>): void {
  for (const c of checks) {
    const t = feeds[c.input];
    if (!t || t.dtype.startsWith('float') || t.dtype === 'string' || t.dtype === 'bool') continue;
    const v = toNumbers(t.dtype, t.data);
    for (let i = 0; i < v.length; i++) {
      const y = v[i]!;
      if (y === c.ignore || (y >= 0 && y < c.classes)) continue;
      throw new InvalidArgumentError(
        (c.training ? '' : `${c.op} node '${c.node}': `) +
        (c.training
          ? `${c.op} target class ${y} is outside [0, ${c.classes}) (and is not ignore_index ${c.ignore}).`
          : `${c.op} target ${y} is not a class index in [0, ${c.classes})${c.ignore === undefined ? '' : ` nor ignore_index ${c.ignore}`}.`),
        { node: c.node, input: c.input, index: i },
      );
    }
  }
}
