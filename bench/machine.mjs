// What a benchmark ran on, recorded in every result file: host, CPU, the WebGPU adapter a bench page gets, Chromium.
import { execFileSync } from 'node:child_process';
import { cpus, hostname } from 'node:os';

export async function benchMachine(browser, origin) {
  const probe = await browser.newPage();
  await probe.goto(`${origin}/bench/page.html`);
  const adapter = await probe.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? { vendor: a.info?.vendor, architecture: a.info?.architecture, description: a.info?.description } : null;
  });
  await probe.close();
  return { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, adapter, chromium: execFileSync('/usr/bin/chromium', ['--version']).toString().trim() };
}
