import { beforeAll, describe, expect, it } from 'vitest';
import { adam, FineTuner, InferenceSession, InvalidArgumentError, Tensor, UnsupportedOpError } from '../../sdk/node.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { graphAttr, model, vi } from '../importer/model-builder.js';
import { modelPath, trainSet } from '../sdk/fine-tuner-helpers.js';

/**
 * The three defects issue #14 names, each pinned by a test through the public API:
 * - WebGPU max/min-based activations (Relu, Clip, HardSigmoid, HardSwish, Celu, Max, Min, and the same
 *   activations fused into a Conv/MatMul epilogue) turned NaN into a number; they must keep it, as the CPU does.
 * - WebGPU cross-entropy gave a number (0 term or NaN) for a class index outside [0, C); it must throw the CPU's
 *   InvalidArgumentError, for the ONNX loss ops and for FineTuner training.
 * - An op EdgeKit cannot run inside an If/Loop body was reported with "Re-export the model with a different
 *   opset"; the message must say the control-flow node is fine and the body op is what to replace.
 */

beforeAll(async () => {
  await gpuForTests();
});

const node = (op: string, inputs: string[], outputs: string[], attrs: ModelNode['attrs'] = {}): ModelNode => ({ op, inputs, outputs, attrs });
const f32 = (shape: number[], v: number[]) => tensorFromNumbers('float32', shape, v);
const zeros = (dtype: 'float32' | 'int64', shape: number[]): HostTensor => tensorFromNumbers(dtype, shape, new Array(shape.reduce((a, b) => a * b, 1)).fill(0));

const NAN_IN = [NaN, -1.5, 0, 2.5, -NaN, 7, -0.25, 3];

async function both(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<[Float32Array, Float32Array]> {
  const out: Float32Array[] = [];
  for (const backend of ['cpu', 'webgpu'] as const) {
    const s = await InferenceSession.create(bytes, { backend });
    try {
      const r = await s.run(feeds);
      out.push(r.y!.data as Float32Array);
    } finally {
      await s.release();
    }
  }
  return [out[0]!, out[1]!];
}

describe('NaN through max/min-based activations on WebGPU', () => {
  const unary: [string, ModelNode['attrs']][] = [
    ['Relu', {}], ['HardSigmoid', {}], ['HardSwish', {}], ['Celu', { alpha: attr(1.5, true) }], ['LeakyRelu', {}],
  ];
  for (const [op, attrs] of unary) {
    it(`${op}(NaN) is NaN, other values as on the CPU`, async () => {
      const bytes = encodeModel({ inputs: { x: zeros('float32', [8]) }, nodes: [node(op, ['x'], ['y'], attrs)], outputs: ['y'] });
      const [cpu, gpu] = await both(bytes, { x: new Tensor('float32', Float32Array.from(NAN_IN), [8]) });
      expect(Number.isNaN(cpu[0])).toBe(true);
      expect(Number.isNaN(gpu[0])).toBe(true);
      expect(Number.isNaN(gpu[4])).toBe(true);
      for (const i of [1, 2, 3, 5, 6, 7]) expect(gpu[i]).toBeCloseTo(cpu[i]!, 5);
    });
  }

  it('Clip with bounds, Max and Min keep NaN from any operand (vec4 and scalar paths)', async () => {
    const bytes = encodeModel({
      inputs: { x: zeros('float32', [8]), z: zeros('float32', [8]) },
      initializers: { lo: f32([], [-1]), hi: f32([], [1]) },
      nodes: [
        node('Clip', ['x', 'lo', 'hi'], ['c']),
        node('Max', ['c', 'z'], ['m']),
        node('Min', ['m', 'x'], ['y']),
      ],
      outputs: ['y'],
    });
    const z = [1, NaN, 0, 0, 0, 0, 0, 0];
    const [cpu, gpu] = await both(bytes, { x: new Tensor('float32', Float32Array.from(NAN_IN), [8]), z: new Tensor('float32', Float32Array.from(z), [8]) });
    expect(Array.from(gpu, (v) => Number.isNaN(v))).toEqual(Array.from(cpu, (v) => Number.isNaN(v)));
    expect(Array.from(gpu.slice(0, 2), Number.isNaN)).toEqual([true, true]);
    for (let i = 2; i < 8; i++) if (!Number.isNaN(cpu[i])) expect(gpu[i]).toBeCloseTo(cpu[i]!, 6);
  });

  it('a Relu / Clip fused into the MatMul epilogue keeps NaN', async () => {
    for (const act of ['Relu', 'Clip'] as const) {
      const bytes = encodeModel({
        inputs: { x: zeros('float32', [4, 8]) },
        initializers: {
          w: f32([8, 4], Array.from({ length: 32 }, (_, i) => ((i * 7) % 5) / 5 - 0.4)),
          ...(act === 'Clip' ? { lo: f32([], [0]), hi: f32([], [6]) } : {}),
        },
        nodes: [node('MatMul', ['x', 'w'], ['h']), node(act, act === 'Clip' ? ['h', 'lo', 'hi'] : ['h'], ['y'])],
        outputs: ['y'],
      });
      const x = Float32Array.from({ length: 32 }, (_, i) => (i % 3) - 1);
      x[8] = NaN; // row 1 becomes NaN everywhere
      const [cpu, gpu] = await both(bytes, { x: new Tensor('float32', x, [4, 8]) });
      for (let i = 0; i < 16; i++) {
        if (i >= 4 && i < 8) expect(Number.isNaN(gpu[i]), `${act} element ${i}`).toBe(true);
        else expect(gpu[i]).toBeCloseTo(cpu[i]!, 5);
      }
    }
  });
});

describe('cross-entropy with a class index outside [0, C)', () => {
  const lossModel = (op: string, withIgnore: boolean) =>
    encodeModel({
      inputs: { x: zeros('float32', [3, 4]), t: zeros('int64', [3]) },
      nodes: [node(op, ['x', 't'], ['y'], { reduction: attr('mean'), ...(withIgnore ? { ignore_index: attr(-1) } : {}) })],
      outputs: ['y'],
    });
  const x = new Tensor('float32', Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]);
  const labels = (v: number[]) => new Tensor('int64', BigInt64Array.from(v, BigInt), [3]);

  for (const op of ['SoftmaxCrossEntropyLoss', 'NegativeLogLikelihoodLoss']) {
    for (const withIgnore of [false, true]) {
      it(`${op}${withIgnore ? ' (ignore_index -1)' : ''}: WebGPU throws the CPU's InvalidArgumentError; valid and ignored targets still run`, async () => {
        const bytes = lossModel(op, withIgnore);
        const msgs: string[] = [];
        for (const backend of ['cpu', 'webgpu'] as const) {
          const s = await InferenceSession.create(bytes, { backend });
          try {
            for (const bad of [[0, 4, 1], [0, 1, -7]]) {
              const e = await s.run({ x, t: labels(bad) }).then(() => undefined, (err: unknown) => err);
              expect(e, `${backend} ${bad}`).toBeInstanceOf(InvalidArgumentError);
              msgs.push((e as Error).message);
            }
            // The session stays usable.
            const ok = await s.run({ x, t: labels(withIgnore ? [0, -1, 3] : [0, 2, 3]) });
            expect(Number.isFinite((ok.y!.data as Float32Array)[0])).toBe(true);
          } finally {
            await s.release();
          }
        }
        expect(msgs.slice(2)).toEqual(msgs.slice(0, 2));
      });
    }
  }

  it('FineTuner.fit on WebGPU rejects an out-of-range label with the CPU trainer\'s error, and trains after it', async () => {
    const data = trainSet([0, 1, 2, 3, 4, 5, 6, 7]);
    const bad = { inputs: data.inputs, labels: new Tensor('int64', BigInt64Array.from([0, 1, 2, 3, 4, 9, 1, 2], BigInt), [8]) };
    const msgs: string[] = [];
    for (const backend of ['cpu', 'webgpu'] as const) {
      const s = await InferenceSession.create(modelPath, { backend });
      const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: adam({ lr: 1e-3 }) });
      try {
        const e = await tuner.fit(bad, { epochs: 1, batchSize: 8 }).then(() => undefined, (err: unknown) => err);
        expect(e, backend).toBeInstanceOf(InvalidArgumentError);
        msgs.push((e as Error).message);
        await tuner.fit(data, { epochs: 1, batchSize: 8 });
      } finally {
        tuner.dispose?.();
        await s.release();
      }
    }
    expect(msgs[1]).toBe(msgs[0]);
  });
});

describe('unsupported op inside control flow', () => {
  it("names the body op and says what to replace, not 'Re-export with a different opset'", async () => {
    const branch = (op: string) => ({ name: op, node: [{ opType: op, input: ['x'], output: [`${op}_out`], name: op }], output: [vi(`${op}_out`)] });
    const bytes = model({
      nodes: [{ op: 'If', inputs: ['cond'], outputs: ['y'], name: 'branch', attrs: [graphAttr('then_branch', branch('Relu')), graphAttr('else_branch', branch('Col2Im'))] }],
      inputs: [vi('cond', 9, []), vi('x', 1, [2])], outputs: [vi('y')],
    });
    for (const backend of ['cpu', 'webgpu'] as const) {
      const e = await InferenceSession.create(bytes, { backend }).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(UnsupportedOpError);
      const m = (e as Error).message;
      expect(m).toMatch(/Col2Im .* at node 'branch\/Col2Im'/);
      expect(m).toMatch(/branch\/Col2Im'.*inside the If body of node 'branch'/);
      expect(m).toMatch(/The If node 'branch' itself is supported; the op inside its body is not/);
      expect(m).not.toMatch(/different opset/);
    }
  });

  it('an opset outside the range says which range to re-export with', async () => {
    const bytes = model({ opset: 99, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    const e = await InferenceSession.create(bytes, { backend: 'cpu' }).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(UnsupportedOpError);
    expect((e as Error).message).toMatch(/opset 99 is outside 1-\d+[\s\S]*opset in the range the reason gives/);
  });
});
