import { attrInt } from '../../../ir/graph.js';
import { toNumbers } from '../../../ir/dtype.js';
import { hostTensor, sizeOf, type HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';

/**
 * NonMaxSuppression-11, the reference the WebGPU kernel is checked against. Per batch and class: the boxes whose
 * score passes score_threshold (strictly greater, when given), visited by descending score (ties: lower box index
 * first), each kept unless its IoU with a box already kept exceeds iou_threshold, until max_output_boxes_per_class
 * are kept. IoU is 0 for boxes without area (no suppression). Boxes are [y1, x1, y2, x2] with any two opposite
 * corners (center_point_box 0) or [x_center, y_center, width, height] (1).
 */

/** A box's [ymin, xmin, ymax, xmax]. */
function corners(b: Float64Array | Float32Array, o: number, center: boolean): [number, number, number, number] {
  if (center) {
    const [xc, yc, w, h] = [b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!];
    return [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2];
  }
  const [y1, x1, y2, x2] = [b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!];
  return [Math.min(y1, y2), Math.min(x1, x2), Math.max(y1, y2), Math.max(x1, x2)];
}

export function iou(a: [number, number, number, number], b: [number, number, number, number]): number {
  const ih = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const iw = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (ih <= 0 || iw <= 0) return 0;
  const inter = ih * iw;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]);
  const areaB = (b[2] - b[0]) * (b[3] - b[1]);
  const union = areaA + areaB - inter;
  return areaA <= 0 || areaB <= 0 || union <= 0 ? 0 : inter / union;
}

/** The selected (batch, class, box) triples, in output order. */
export function nmsSelect(inputs: (HostTensor | undefined)[], centerPointBox: number): number[][] {
  const [boxes, scores, maxT, iouT, scoreT] = inputs;
  const max = maxT ? Number(toNumbers(maxT.dtype, maxT.data)[0]) : 0;
  const iouThreshold = iouT ? Number(toNumbers(iouT.dtype, iouT.data)[0]) : 0;
  const scoreThreshold = scoreT ? Number(toNumbers(scoreT.dtype, scoreT.data)[0]) : undefined;
  const [batches, n] = boxes!.shape as [number, number];
  const classes = scores!.shape[1]!;
  const b = boxes!.data as Float32Array;
  const s = scores!.data as Float32Array;
  const out: number[][] = [];
  if (max <= 0) return out;
  for (let bi = 0; bi < batches; bi++) {
    for (let c = 0; c < classes; c++) {
      const base = (bi * classes + c) * n;
      const order = [];
      for (let i = 0; i < n; i++) if (scoreThreshold === undefined || s[base + i]! > scoreThreshold) order.push(i);
      order.sort((x, y) => s[base + y]! - s[base + x]! || x - y);
      const kept: [number, number, number, number][] = [];
      for (const i of order) {
        if (kept.length >= max) break;
        const box = corners(b, (bi * n + i) * 4, centerPointBox === 1);
        if (kept.some((k) => iou(k, box) > iouThreshold)) continue;
        kept.push(box);
        out.push([bi, c, i]);
      }
    }
  }
  return out;
}

const rowsTensor = (rows: number[][], total: number): HostTensor => {
  const data = new BigInt64Array(total * 3);
  rows.forEach((r, k) => r.forEach((v, j) => (data[k * 3 + j] = BigInt(v))));
  return hostTensor('int64', [total, 3], data);
};

const nms: CpuKernel = (inputs, node) => {
  const rows = nmsSelect(inputs, attrInt(node, 'center_point_box', 0));
  return [rowsTensor(rows, rows.length)];
};

/** The WebGPU lowering's form (ir/ops/nms.ts): rows in an upper-bound buffer (zeros past them) and their count. */
const nmsPadded: CpuKernel = (inputs, node, ctx) => {
  const rows = nmsSelect(inputs, attrInt(node, 'center_point_box', 0));
  const [batches, n] = inputs[0]!.shape as [number, number];
  const max = inputs[2] ? Number(toNumbers(inputs[2].dtype, inputs[2].data)[0]) : 0;
  const bound = sizeOf([batches * inputs[1]!.shape[1]! * Math.max(0, Math.min(max, n))], ctx.maxElements);
  return [rowsTensor(rows, bound), hostTensor('int64', [], BigInt64Array.of(BigInt(rows.length)))];
};

export const kernels: Record<string, CpuKernel> = { NonMaxSuppression: nms, NonMaxSuppressionPadded: nmsPadded };
