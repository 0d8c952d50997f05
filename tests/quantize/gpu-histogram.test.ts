import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { calibrate, chosenRange, HIST_BINS, type TensorStats } from '../../quantize/calibrate.js';
import { gatherHistograms, type HistogramRange } from '../../quantize/histogram.js';
import { resolveOptions } from '../../quantize/options.js';
import { createRunner, type QuantizeEnv } from '../../quantize/runner.js';
import { planStatic } from '../../quantize/static-int8.js';
import { CpuSession } from '../../runtime/backends/cpu/cpu-session.js';
import { setHistogramShape } from '../../runtime/backends/webgpu/kernels/histogram.js';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { GpuSession } from '../../runtime/backends/webgpu/gpu-session.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey } from '../../runtime/backends/webgpu/program.js';
import { UnsupportedOpError } from '../../runtime/errors.js';
import { quantize } from '../../sdk/node.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { binning, binOf, HISTOGRAM_OP } from '../../runtime/ir/ops/histogram.js';
import { optimize } from '../../runtime/ir/passes/index.js';
import { hostTensor, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, node } from '../helpers/ir-builder.js';
import { Rng } from '../helpers/random.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { digits, fashion } from './fixtures.js';

/**
 * Calibration histograms on the GPU (issue #11 §2): the edgekit.Histogram op's WebGPU kernel against its CPU
 * reference (counts exactly equal: one binning rule in f32 steps, integer atomics), the quantizer's histogram pass
 * against the host binning it replaced (same chosen ranges up to float rounding of bin edges), and what comes back
 * from the GPU (only the bins).
 */

// ---- f32 helpers ----------------------------------------------------------------------------------------------
const f32b = new Float32Array(1);
const u32b = new Uint32Array(f32b.buffer);
/** The next f32 above (dir 1) or below (dir -1) a finite f32 value. */
function nextF32(v: number, dir: 1 | -1): number {
  f32b[0] = v;
  if (v === 0) {
    u32b[0] = dir > 0 ? 1 : 0x80000001;
    return f32b[0]!;
  }
  u32b[0] = u32b[0]! + ((v > 0) === (dir > 0) ? 1 : -1);
  return f32b[0]!;
}

/** Random values plus every edge case of the rule: the range ends and their neighbours, values on and next to bin edges, outside the range, NaN, infinities, -0, subnormals, huge. */
function edgeData(rng: Rng, n: number, low: number, high: number, bins: number): Float32Array {
  const edges: number[] = [low, high, Math.fround(low), Math.fround(high), NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3e38, -3e38];
  for (const v of [low, high]) edges.push(nextF32(Math.fround(v), 1), nextF32(Math.fround(v), -1));
  const { scale } = binning(low, high, bins);
  for (let k = 0; k <= bins; k += Math.max(1, Math.floor(bins / 64))) {
    // A value whose f32 bin position is exactly k (when the arithmetic allows), and its f32 neighbours.
    const e = Math.fround(Math.fround(low) + (scale ? k / scale : 0));
    edges.push(e, nextF32(e, 1), nextF32(e, -1));
  }
  const out = new Float32Array(n);
  const span = high - low || 1;
  for (let i = 0; i < n; i++) out[i] = i < edges.length ? edges[i]! : low - 0.1 * span + 1.2 * span * rng.next();
  // Spread the edge cases over the array (different workgroups), deterministically.
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function histGraph(n: number, bins: number, low: number, high: number, abs: boolean, withAcc = true): Graph {
  return buildGraph({
    inputs: withAcc ? [['x', 'float32', [n]], ['acc', 'uint32', [bins]]] : [['x', 'float32', [n]]],
    nodes: [node(HISTOGRAM_OP, withAcc ? ['x', 'acc'] : ['x'], ['y'], { bins: attr(bins), low: attr(low, true), high: attr(high, true), abs: attr(abs ? 1 : 0) })],
    outputs: ['y'],
  });
}

describe('edgekit.Histogram: the binning rule', () => {
  it('puts the range ends, NaN, infinities and out-of-range values where the rule says', () => {
    const bins = 8;
    const p = { bins, ...binning(-1, 3, bins), abs: false }; // bins of width 0.5
    const expected: [number, number][] = [
      [-1, 0], [3, 7], [-0.5, 1], [0, 2], [0.49, 2], [2.999, 7], [-5, 0], [7, 7], [NaN, -1], [Infinity, 7], [-Infinity, 0],
    ];
    for (const [v, b] of expected) expect(binOf(v, p), `value ${v}`).toBe(b);
    // A degenerate range counts every finite value in bin 0.
    const d = { bins, ...binning(2, 2, bins), abs: false };
    expect(d.scale).toBe(0);
    expect([binOf(-7, d), binOf(2, d), binOf(1e30, d), binOf(Infinity, d)]).toEqual([0, 0, 0, bins - 1]);
  });
});

describe('edgekit.Histogram on WebGPU vs the CPU reference', () => {
  const cases: [string, number, number, number, number, boolean, boolean][] = [
    // title, n, bins, low, high, abs, with an Acc input
    ['signed, 2048 bins, one workgroup', 1000, 2048, -2.5, 3.75, false, true],
    ['abs, 2048 bins, many workgroups', 300_001, 2048, 0, 4, true, true],
    ['signed, 7 bins, odd size, no Acc', 70_001, 7, -1, 1, false, false],
    ['signed, 4096 bins (16 KiB of workgroup memory), wide range', 65_536, 4096, -1e-3, 5e4, false, true],
    ['a degenerate range', 5000, 2048, 1.5, 1.5, false, true],
    ['one value, no Acc', 1, 2048, -1, 1, false, false],
  ];
  const shapes = [['gpu', 'the GPU dispatch shape'], ['cpu', 'the CPU adapter\'s']] as const;
  for (const [title, n, bins, low, high, abs, withAcc] of cases) for (const [shape, what] of shapes) {
    it(`${title}, ${what}: counts are exactly equal`, async () => {
      setHistogramShape(shape);
      const res = await gpuForTests();
      const rng = new Rng(n + bins);
      const g = histGraph(n, bins, low, high, abs, withAcc);
      const x = hostTensor('float32', [n], edgeData(rng, n, low, high, bins));
      const acc = hostTensor('uint32', [bins], withAcc ? Uint32Array.from({ length: bins }, () => rng.int(0, 1000)) : undefined);
      const feeds = withAcc ? { x, acc } : { x };
      const cpu = new CpuSession(g).run(feeds, ['y']).y as HostTensor;
      const s = await GpuSession.create(res, g);
      try {
        const gpu = (await s.run(feeds, ['y'])).host.y!;
        expect(gpu.dtype).toBe('uint32');
        expect(Array.from(gpu.data as Uint32Array)).toEqual(Array.from(cpu.data as Uint32Array));
      } finally {
        s.dispose();
        setHistogramShape(undefined);
      }
      // Every non-NaN value is counted once.
      const nans = (x.data as Float32Array).filter((v) => Number.isNaN(v)).length;
      const sum = (t: HostTensor) => (t.data as Uint32Array).reduce((a, b) => a + b, 0);
      expect(sum(cpu) - sum(acc)).toBe(n - nans);
    }, 120_000);
  }

  it('refuses more bins than workgroup memory holds, at load, naming the op', async () => {
    const res = await gpuForTests();
    const bins = res.ctx.limits.maxComputeWorkgroupStorageSize / 4 + 1;
    setHistogramShape('gpu'); // the CPU adapter's program has no workgroup array, so no such limit
    const err = await GpuSession.create(res, histGraph(16, bins, 0, 1, false)).catch((e) => e);
    setHistogramShape(undefined);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(String(err.message)).toMatch(/edgekit\.Histogram/);
  });

  for (const [shape, count] of [['gpu', 'histogram_count:2048:abs'], ['cpu', 'histogram_count_direct:2048:abs']] as const) {
    it(`generated WGSL (${shape})`, () => {
      setHistogramShape(shape);
      const n = node(HISTOGRAM_OP, ['x', 'acc'], ['y'], { bins: attr(2048), low: attr(-1, true), high: attr(1, true), abs: attr(1) });
      const plan = GPU_KERNELS[HISTOGRAM_OP]!.plan(
        n,
        [{ dtype: 'float32', shape: [1000], storage: 'f32' }, { dtype: 'uint32', shape: [2048], storage: 'u32' }],
        [{ dtype: 'uint32', shape: [2048], storage: 'u32' }],
        SNAPSHOT_ENV,
      );
      setHistogramShape(undefined);
      expect(plan.calls.map((c) => c.program.key)).toEqual(['histogram_start:acc', count]);
      for (const c of plan.calls) expect(generateSource(c.program, SNAPSHOT_ENV.f16)).toMatchSnapshot(fullKey(c.program));
    });
  }
});

// ---- the quantizer's histogram pass ---------------------------------------------------------------------------

/** The host binning the GPU pass replaced (quantize/calibrate.ts before issue #11 §2), float64 arithmetic. */
function hostBin(h: Float64Array, s: TensorStats, v: Float32Array, abs: boolean): void {
  const lo = abs ? 0 : s.min;
  const hi = abs ? Math.max(-s.min, s.max) : s.max;
  const w = (hi - lo) / HIST_BINS;
  if (!(w > 0)) {
    h[0]! += v.length;
    return;
  }
  for (let i = 0; i < v.length; i++) {
    const x = abs ? Math.abs(v[i]!) : v[i]!;
    h[Math.min(HIST_BINS - 1, Math.max(0, Math.floor((x - lo) / w)))]! += 1;
  }
}

async function digitsSetup() {
  const m = digits();
  const { graph } = optimize((await importOnnx(m.bytes)).graph);
  const feeds = m.calibration(20, 8);
  return { graph, feeds };
}

const envOf = (backend: 'cpu' | 'webgpu'): QuantizeEnv => (backend === 'cpu' ? { backend } : { backend, gpu: gpuForTests });

describe('calibration histograms on the device (digits CNN, 8 batches of 20, unless named)', () => {
  for (const backend of ['webgpu', 'cpu'] as const) {
    for (const method of ['percentile', 'entropy'] as const) {
      it(`${method} on ${backend}: the bins and chosen ranges of the host binning, up to float rounding of bin edges`, async () => {
        const { graph, feeds } = await digitsSetup();
        const opts = resolveOptions({ mode: 'int8', method, calibration: feeds });
        const tensors = planStatic(graph, opts).tensors;
        expect(tensors.length).toBeGreaterThan(4);
        const env = envOf(backend);
        const stats = await calibrate(graph, tensors, feeds, opts, env);

        // The reference: the same backend's activations read back and binned on the host, over the same ranges.
        const plain = { ...graph, outputs: tensors.map((name) => ({ name, dtype: 'float32' as const, shape: graph.values[name]?.shape })) };
        const reader = await createRunner(plain, env);
        const ref = new Map(tensors.map((t) => [t, new Float64Array(HIST_BINS)]));
        try {
          for (const f of feeds) {
            const r = await reader.run(f, tensors);
            for (const t of tensors) hostBin(ref.get(t)!, stats.get(t)!, r[t]!.data as Float32Array, method === 'entropy');
          }
        } finally {
          reader.dispose();
        }
        let moved = 0;
        let total = 0;
        let sameRanges = 0;
        for (const t of tensors) {
          const s = stats.get(t)!;
          const h = s.hist!;
          const want = ref.get(t)!;
          const count = want.reduce((a, b) => a + b, 0);
          expect(h.reduce((a, b) => a + b, 0), t).toBe(count);
          // A value may change bins only where it sits within f32 rounding of a bin edge: a handful per tensor.
          let diff = 0;
          for (let b = 0; b < HIST_BINS; b++) diff += Math.abs(h[b]! - want[b]!);
          moved += diff / 2;
          total += count;
          expect(diff / 2, t).toBeLessThanOrEqual(Math.max(2, count * 1e-4));
          const [lo, hi] = chosenRange(s, opts);
          const [wlo, whi] = chosenRange({ ...s, hist: want }, opts);
          // Equal, unless a moved value sat exactly at the tail cut: then one bin apart at most.
          const w = (method === 'entropy' ? Math.max(-s.min, s.max) : s.max - s.min) / HIST_BINS;
          expect(Math.abs(lo - wlo), `${t} low`).toBeLessThanOrEqual(w * 1.0001);
          expect(Math.abs(hi - whi), `${t} high`).toBeLessThanOrEqual(w * 1.0001);
          if (lo === wlo && hi === whi) sameRanges++;
        }
        console.log(`${backend} ${method}: ${tensors.length} tensors, ${total} values binned, ${moved} in a different bin than the float64 host binning; chosen range identical for ${sameRanges} of ${tensors.length} tensors`);
      }, 300_000);
    }
  }

  it('quantize() through the public API: percentile and entropy on WebGPU choose the CPU backend\'s activation scales', async () => {
    const m = digits();
    for (const method of ['percentile', 'entropy'] as const) {
      const scales: Record<string, number>[] = [];
      for (const backend of ['cpu', 'webgpu'] as const) {
        const q = await quantize(m.bytes, { mode: 'int8', method, backend, calibration: m.calibration(20, 8), reportSamples: 0 });
        const { graph } = await importOnnx(q.model);
        const qs = graph.nodes.filter((n) => n.op === 'QuantizeLinear');
        scales.push(Object.fromEntries(qs.map((n) => [n.inputs[0]!, Number(graph.initializers[n.inputs[1]!]!.data[0])])));
      }
      const [cpu, gpu] = scales as [Record<string, number>, Record<string, number>];
      expect(Object.keys(gpu).sort()).toEqual(Object.keys(cpu).sort());
      expect(Object.keys(cpu).length).toBeGreaterThan(3);
      // The backends' activations differ by float rounding (summation order), so ranges do too, by ~1e-7 relative;
      // the bins differ only by values at a bin edge. 1e-5 is far below one bin's share of a range (1/2048), so a
      // tail cut or entropy threshold moved by a bin, or any binning difference that matters, fails here.
      const rel = Object.keys(cpu).map((k) => Math.abs(gpu[k]! - cpu[k]!) / cpu[k]!);
      console.log(`quantize() ${method}: ${rel.length} activation scales, WebGPU vs CPU largest relative difference ${Math.max(...rel).toExponential(2)}`);
      for (const r of rel) expect(r).toBeLessThan(1e-5);
    }
  }, 300_000);

  it('on WebGPU only the bins come back (2048 x 4 bytes per tensor), not the activations (Fashion-MNIST CNN, 10 batches of 20)', async () => {
    const res = await gpuForTests();
    console.log(`device: ${describeDevice(res)}`);
    const m = fashion();
    const { graph } = optimize((await importOnnx(m.bytes)).graph);
    const feeds = m.calibration(20, 10);
    const opts = resolveOptions({ mode: 'int8', method: 'percentile', calibration: feeds });
    const tensors = planStatic(graph, opts).tensors;
    const env = envOf('webgpu');
    const stats = await calibrate(graph, tensors, feeds, { ...opts, method: 'minmax' }, env);
    const ranges = tensors.map((t): HistogramRange => ({ low: stats.get(t)!.min, high: stats.get(t)!.max, abs: false }));
    let before = res.memory.stats().readbackBytes;
    let t0 = performance.now();
    const hists = await gatherHistograms(graph, tensors, ranges, HIST_BINS, feeds, env);
    const gpuMs = performance.now() - t0;
    const read = res.memory.stats().readbackBytes - before;
    expect(read).toBe(tensors.length * HIST_BINS * 4);
    // The host binning's pass: every calibrated tensor of every example read back, then binned.
    before = res.memory.stats().readbackBytes;
    t0 = performance.now();
    const plain = { ...graph, outputs: tensors.map((name) => ({ name, dtype: 'float32' as const, shape: graph.values[name]?.shape })) };
    const reader = await createRunner(plain, env);
    let values = 0;
    let activations = 0; // values of the tensors computed on the GPU (a graph input comes back from the feeds)
    const fed = new Set(graph.inputs.map((i) => i.name));
    try {
      for (const f of feeds) {
        const r = await reader.run(f, tensors);
        tensors.forEach((t, k) => {
          const v = r[t]!.data as Float32Array;
          hostBin(new Float64Array(HIST_BINS), stats.get(t)!, v, false);
          values += v.length;
          if (!fed.has(t)) activations += v.length;
        });
      }
    } finally {
      reader.dispose();
    }
    const hostMs = performance.now() - t0;
    const hostRead = res.memory.stats().readbackBytes - before;
    expect(hostRead).toBe(activations * 4);
    expect(hists.reduce((a, h) => a + h.reduce((x, y) => x + y, 0), 0)).toBe(values);
    console.log(
      `${tensors.length} tensors x ${feeds.length} examples (${values} values): GPU histograms read back ${read} bytes in ${gpuMs.toFixed(0)} ms; ` +
        `readback + host binning read ${hostRead} bytes in ${hostMs.toFixed(0)} ms`,
    );
  }, 300_000);

  it('reading back before the counts could wrap gives the same totals (a low count limit forces it every example)', async () => {
    const { graph, feeds } = await digitsSetup();
    const opts = resolveOptions({ mode: 'int8', method: 'entropy', calibration: feeds });
    const tensors = planStatic(graph, opts).tensors;
    for (const backend of ['webgpu', 'cpu'] as const) {
      const stats = await calibrate(graph, tensors, feeds, { ...opts, method: 'minmax' }, envOf(backend));
      const ranges = tensors.map((t): HistogramRange => ({ low: 0, high: Math.max(-stats.get(t)!.min, stats.get(t)!.max), abs: true }));
      const once = await gatherHistograms(graph, tensors, ranges, HIST_BINS, feeds, envOf(backend));
      const res = backend === 'webgpu' ? await gpuForTests() : undefined;
      const before = res?.memory.stats().readbackBytes ?? 0;
      const often = await gatherHistograms(graph, tensors, ranges, HIST_BINS, feeds, envOf(backend), { countLimit: 1 });
      if (res) expect(res.memory.stats().readbackBytes - before).toBe(feeds.length * tensors.length * HIST_BINS * 4);
      expect(often.map((h) => Array.from(h))).toEqual(once.map((h) => Array.from(h)));
    }
  }, 300_000);
});
