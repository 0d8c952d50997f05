import { describe, expect, it } from 'vitest';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { allocateBuffers, createLayout, PARAM_ALIGNMENT, sectionView, writeSection } from '../../runtime/train/layout.js';

describe('flat parameter layout', () => {
  const layout = createLayout([
    { name: 'w', shape: [3, 5] },
    { name: 'b', shape: [5] },
    { name: 'big', shape: [70] },
  ]);

  it('gives each parameter an aligned offset, sized per section', () => {
    expect(layout.entries.map((e) => [e.name, e.offset, e.size])).toEqual([['w', 0, 15], ['b', 64, 5], ['big', 128, 70]]);
    expect(layout.length).toBe(256);
    expect(PARAM_ALIGNMENT * 4).toBe(256); // bytes: WebGPU's default minStorageBufferOffsetAlignment
  });

  it('puts params, grads and optimizer slots in one allocation with the same offsets', () => {
    const buf = allocateBuffers(layout, 2);
    expect(buf.flat.length).toBe(4 * layout.length);
    for (const s of [buf.params, buf.grads, ...buf.slots]) expect(s.buffer).toBe(buf.flat.buffer);
    expect(buf.grads.byteOffset).toBe(layout.length * 4);
    expect(buf.slots[1]!.byteOffset).toBe(3 * layout.length * 4);
  });

  it('parameter views share memory with the section', () => {
    const buf = allocateBuffers(layout, 0);
    writeSection(layout, buf.params, 'b', tensorFromNumbers('float32', [5], [1, 2, 3, 4, 5]));
    const view = sectionView(layout, buf.params, 'b');
    expect(Array.from(view.data as Float32Array)).toEqual([1, 2, 3, 4, 5]);
    buf.params[64] = 42;
    expect((view.data as Float32Array)[0]).toBe(42);
    expect(() => writeSection(layout, buf.params, 'b', tensorFromNumbers('float32', [4], [1, 2, 3, 4]))).toThrow(/shape/);
    expect(() => sectionView(layout, buf.params, 'nope')).toThrow(/not a trainable parameter/);
  });
});
