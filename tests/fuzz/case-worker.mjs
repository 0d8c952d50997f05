// worker_threads entry for the importer fuzzer's CPU cases (tests/fuzz/worker-fuzz.ts): receives one case at a
// time, runs it with runCase (importer-fuzz.ts) and posts the result back. The parent's watchdog terminates this
// thread when a case does not answer in time, which a timer inside the case cannot do for a synchronous hang.
// WebGPU is refused here before Dawn could load (docs/workers.md: terminating a thread that holds a Dawn device can
// abort the process); the fuzzer's WebGPU cases run on the main thread.
import { register } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

register('../worker/ts-hooks.mjs', import.meta.url);
const { refuseWebGpu } = await import('../../runtime/backends/webgpu/device.js');
const { DeviceError } = await import('../../runtime/errors.js');
refuseWebGpu(new DeviceError('NO_WEBGPU', 'the importer fuzzer runs only CPU cases in worker_threads (docs/workers.md)'));
const { runCase } = await import('./importer-fuzz.js');

// Test-only: case numbers at which this worker spins forever before running the case, to test the watchdog.
const hangAt = new Set(workerData?.injectHangAt ?? []);

parentPort.on('message', async (msg) => {
  if (hangAt.has(msg.index)) for (;;);
  const r = await runCase(msg.bytes, msg.index, msg.mutations, msg.opts);
  parentPort.postMessage(r);
});
parentPort.postMessage({ ready: true });
