// Runs inside the bench page. EdgeKit sessions of several files of one model (float32 and int8) measured in ONE
// page with their warm runs alternating, so the shared machine's slow spells hit every variant alike: the ratio of
// their medians is what separate pages (bench/quantize.mjs's contender table) measure less steadily. Returns, per
// variant: cold start (create + first run), warm median and the runs, and with profiles > 0 the GPU time by kernel
// (session.profile: the mean of `profiles` profiled runs after one discarded).
export async function runAlternating(urls, dims, runs, profiles = 0) {
  const ek = await import('/dist/browser/edgekit.js');
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n).map((_, i) => Math.sin(i * 0.01));
  const s = {};
  for (const [k, url] of Object.entries(urls)) {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const t0 = performance.now();
    const session = await ek.InferenceSession.create(bytes, { backend: 'webgpu' });
    const feeds = { [session.inputNames[0]]: new ek.Tensor('float32', data, dims) };
    await session.run(feeds);
    s[k] = { session, feeds, cold: performance.now() - t0, times: [] };
  }
  try {
    for (let i = 0; i < runs; i++) {
      for (const v of Object.values(s)) {
        const t = performance.now();
        await v.session.run(v.feeds);
        v.times.push(performance.now() - t);
      }
    }
    const out = {};
    for (const [k, v] of Object.entries(s)) {
      const by = {};
      let gpu = 0;
      for (let j = 0; j <= profiles && profiles > 0; j++) {
        const prof = await v.session.profile(v.feeds);
        if (j === 0) continue;
        for (const d of prof) {
          const name = d.kernel.split('|')[0];
          by[name] = (by[name] ?? 0) + d.ms / profiles;
          gpu += d.ms / profiles;
        }
      }
      const t = [...v.times].sort((a, b) => a - b);
      out[k] = { cold: v.cold, median: t[t.length >> 1], gpu, times: v.times.map(Math.round), by: Object.entries(by).sort((a, b) => b[1] - a[1]) };
    }
    return out;
  } finally {
    for (const v of Object.values(s)) await v.session.release();
  }
}
