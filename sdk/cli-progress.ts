/**
 * Progress bars for the CLI's long work (cli-progress, on stderr; drawn only on a terminal, so piped output stays
 * clean): loading a model (bytes read, then WebGPU pipelines compiled) and repeated runs (`--runs N`).
 */
import cliProgress from 'cli-progress';
import type { LoadProgress } from './node.js';

const mib = (b: number) => (b / 2 ** 20).toFixed(1);

/** A bar for InferenceSession.create: pass `onProgress` to it and call `stop()` when the load ends (or fails). */
export function loadBar(label: string): { onProgress: (p: LoadProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { onProgress: () => undefined, stop: () => undefined };
  const bars = new cliProgress.MultiBar({ format: ' {what} [{bar}] {shown}', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  const byKey = new Map<string, cliProgress.SingleBar>();
  const bar = (key: string, total: number, what: string) => {
    let b = byKey.get(key);
    if (!b) byKey.set(key, (b = bars.create(total, 0, { what, shown: '' })));
    else b.setTotal(total);
    return b;
  };
  return {
    onProgress(p) {
      if (p.phase === 'fetch') {
        // Bytes in MiB when the size is known; a file without one counts up with no end.
        const name = p.url === label ? 'load' : p.url.split('/').pop() ?? 'data';
        const total = p.total ?? Math.max(p.loaded, 1);
        bar(p.url, total, `${p.fromCache ? 'cache' : 'read '} ${name}`.slice(0, 28).padEnd(28)).update(p.loaded, { shown: `${mib(p.loaded)}/${p.total === undefined ? '?' : mib(p.total)} MiB` });
      } else {
        bar('compile', Math.max(p.total, 1), 'compile pipelines'.padEnd(28)).update(p.done, { shown: `${p.done}/${p.total}` });
      }
    },
    stop: () => bars.stop(),
  };
}

/** A bar over `n` runs (shown when n > 1); `tick()` after each, `stop()` at the end. */
export function runsBar(n: number, what: string): { tick: () => void; stop: () => void } {
  if (n <= 1 || !process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar({ format: ` ${what} [{bar}] {value}/{total} runs`, hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  bar.start(n, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}
