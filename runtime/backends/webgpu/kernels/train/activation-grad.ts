import { InvalidArgumentError } from '../../../../errors.js';
import { attrInt, attrString } from '../../../../ir/graph.js';
import { normalizeAxis } from '../../../../ir/shape.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert } from '../../wgsl/builder.js';
import { mathHelper } from '../../wgsl/math.js';
import { RowLayout, rowView } from '../rows.js';
import { floatOnly } from './common.js';

/**
 * GeluGrad(dY, X) {approximate} and SoftmaxGrad(dY, Y) {axis, log}: twins of runtime/train/ops/activation-grad.ts.
 *   GeluGrad exact: dX = dY (Phi(x) + x phi(x)); tanh: dX = dY ((1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 c x^2)),
 *     t = tanh(sqrt(2/pi) (x + c x^3)), c = 0.044715. One invocation per element.
 *   SoftmaxGrad: dX = Y (dY - sum_axis(dY Y)); log=1: dX = dY - exp(Y) sum_axis(dY). One row per softmax row.
 */

const WG = 64;

function geluGradProgram(approx: 'none' | 'tanh', dy: GpuTensorInfo, x: GpuTensorInfo, dx: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(dx.shape);
  return {
    key: `train:gelu-grad:${approx}`,
    bindings: [{ name: 'dy', type: dy.storage }, { name: 'x', type: x.storage }, { name: 'dx', type: dx.storage }],
    uniforms: [{ name: 'size', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(dx.storage);
      const lines = [b.linearIndex('u.size'), `let g = ${b.loadAs('dy', 'index', 'f32')};`, `let v = ${b.loadAs('x', 'index', 'f32')};`];
      if (approx === 'tanh') {
        const tanh = mathHelper(b, 'tanh', 'f32');
        lines.push(
          'let k = 0.7978845608028654; // sqrt(2 / pi)',
          `let t = ${tanh}(k * (v + 0.044715 * v * v * v));`,
          'let d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v);',
        );
      } else {
        const erf = mathHelper(b, 'erf', 'f32');
        lines.push(`let d = 0.5 * (1.0 + ${erf}(v * 0.7071067811865476)) + v * 0.3989422804014327 * exp(-0.5 * v * v);`);
      }
      lines.push(b.store('dx', 'index', convert(T, 'f32', 'g * d')));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size } };
    },
  };
}

const geluGrad: GpuKernel = {
  plan(node, [dy, x], [dx]) {
    floatOnly(node.op, 'dY', dy);
    floatOnly(node.op, 'X', x);
    const approx = attrString(node, 'approximate', 'none');
    if (approx !== 'none' && approx !== 'tanh') throw new InvalidArgumentError(`GeluGrad approximate must be 'none' or 'tanh', got '${approx}'.`);
    if (sizeOfShape(dx!.shape) === 0) return { calls: [] };
    return { calls: [{ program: geluGradProgram(approx, dy!, x!, dx!), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

function softmaxGradProgram(log: boolean, dy: GpuTensorInfo, y: GpuTensorInfo, dx: GpuTensorInfo, axis: number): ProgramSpec {
  const layout = new RowLayout(rowView(y.shape, [axis]));
  return {
    key: `train:softmax-grad:${log ? 'log' : 'plain'}:${layout.key}`,
    bindings: [{ name: 'dy', type: dy.storage }, { name: 'y', type: y.storage }, { name: 'dx', type: dx.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const T = computeTypeOf(dx.storage);
      const dyAt = (off: string) => b.loadAs('dy', off, 'f32');
      const yAt = (off: string) => b.loadAs('y', off, 'f32');
      const lines = [...rc.head(), ...rc.reduce('s', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off) => (log ? dyAt(off) : `${dyAt(off)} * ${yAt(off)}`))];
      const value = (off: string) => (log ? `${dyAt(off)} - exp(${yAt(off)}) * s` : `${yAt(off)} * (${dyAt(off)} - s)`);
      lines.push(...rc.forEach((off) => [b.store('dx', off, convert(T, 'f32', value(off)))]));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

const softmaxGrad: GpuKernel = {
  plan(node, [dy, y], [dx]) {
    floatOnly(node.op, 'dY', dy);
    floatOnly(node.op, 'Y', y);
    const axis = normalizeAxis(attrInt(node, 'axis', -1), y!.shape.length);
    if (sizeOfShape(dx!.shape) === 0) return { calls: [] };
    const program = softmaxGradProgram(attrInt(node, 'log', 0) !== 0, dy!, y!, dx!, axis);
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { GeluGrad: geluGrad, SoftmaxGrad: softmaxGrad };
