// Runs in the browser page: the bundle loads torch.onnx exports with dynamic axes by URL and runs them at several
// shapes on WebGPU and on the CPU backend (the ViT block's Shape arithmetic folds per plan; the ragged model's
// Slice end comes from its mask's data and is read back at a stage boundary).
export async function run(origin) {
  const ek = await import(`${origin}/dist/browser/edgekit.js`);
  let seed = 1;
  const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1);
  const compare = async (name, feedsFor) => {
    const url = `${origin}/tests/fixtures/dynamic/${name}.onnx`;
    const gpu = await ek.InferenceSession.create(url, { backend: 'webgpu' });
    const cpu = await ek.InferenceSession.create(url, { backend: 'cpu' });
    let worst = 0;
    const shapes = [];
    for (const feeds of feedsFor()) {
      const g = await gpu.run(feeds);
      const c = await cpu.run(feeds);
      for (const k of Object.keys(c)) {
        shapes.push(g[k].dims.join('x'));
        let d = 0, m = 0;
        for (let i = 0; i < c[k].data.length; i++) {
          d = Math.max(d, Math.abs(g[k].data[i] - c[k].data[i]));
          m = Math.max(m, Math.abs(c[k].data[i]));
        }
        worst = Math.max(worst, m ? d / m : d);
      }
    }
    const report = gpu.report().gpu;
    await gpu.release();
    await cpu.release();
    return { worst, shapes, stages: report.stages, readbacks: report.readbacks };
  };
  const vit = await compare('vit-block-op17', () =>
    [[1, 7], [3, 4]].map(([b, t]) => ({ tokens: new ek.Tensor('float32', rand(b * t * 12), [b, t, 12]) })),
  );
  const ragged = await compare('ragged-op13', () =>
    [[2, 3], [4, 1]].map(([a, b]) => ({
      x: new ek.Tensor('float32', rand(2 * 6 * 6), [2, 6, 6]),
      mask: new ek.Tensor('float32', Float32Array.from({ length: 12 }, (_, k) => (k % 6 < (k < 6 ? a : b) ? 1 : 0)), [2, 6]),
    })),
  );
  return { vit, ragged };
}
