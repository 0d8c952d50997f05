// Shared by the page benchmarks (bench/camera.mjs, bench/diffusion.mjs, bench/decoder.mjs): one contender in a fresh
// tab of bench/page.html, polled from Node, and the results file with the machine and the commit.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/**
 * Opens bench/page.html in a new tab, imports `module` (a path under the served repo) there and calls its export
 * `fn(origin, contender, options)`. The call is started without awaiting and polled every 2 s from here, because
 * one contender can outlast the DevTools protocol's call timeout (240 s), which puppeteer's waitForFunction is
 * subject to (its in-page poller is one protocol call). Resolves with the page's result; rejects with the page's
 * error, its console errors appended. `limitS` 0 means no limit.
 */
export async function runContender(browser, origin, { module, fn, contender, options, limitS }) {
  const page = await browser.newPage();
  const log = [];
  page.on('pageerror', (e) => log.push(e.message));
  page.on('console', (m) => m.type() === 'error' && log.push(m.text()));
  await page.goto(`${origin}/bench/page.html`);
  try {
    await page.evaluate(`globalThis.__run = import('${origin}/${module}').then((m) => m.${fn}('${origin}', '${contender}', ${JSON.stringify(options)})).then((r) => (globalThis.__done = { r }), (e) => (globalThis.__done = { e: String(e && e.stack || e) })); 0`);
    const t0 = Date.now();
    for (;;) {
      const done = await page.evaluate('globalThis.__done');
      if (done) {
        if (done.e) throw new Error(done.e);
        return done.r;
      }
      if (limitS && Date.now() - t0 > limitS * 1000) throw new Error(`no result after ${limitS} s (--timeout)`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  } catch (e) {
    throw new Error(`${e.message}${e.cause ? `: ${e.cause.message ?? e.cause}` : ''}${log.length ? `\n${log.join('\n')}` : ''}`);
  } finally {
    await page.close();
  }
}

/** Writes bench/results/<kind>-<ISO time>.json with the current commit added; returns the file's path. */
export function writeResults(kind, data) {
  let git = '';
  try {
    git = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
  } catch {}
  const file = `bench/results/${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  const { machine, ...rest } = data;
  writeFileSync(file, JSON.stringify({ machine, git, ...rest }, null, 2));
  return file;
}
