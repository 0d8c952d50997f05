/**
 * The worker_threads entry: hosts InferenceSessions (host.ts) behind one scheduler and exposes them to the client
 * (client.ts) with comlink. Imports the Node entry so file paths and the `webgpu` package work inside the worker.
 */
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import { DeviceError } from '../../runtime/errors.js';
import { refuseWebGpu } from '../../runtime/backends/webgpu/device.js';
import '../node.js';
import { WorkerHost } from './host.js';
import { nodeEndpoint } from './node-endpoint.js';

if (!parentPort) throw new Error('sdk/worker/node-entry is a worker_threads entry; start it with createWorker().');
// Decision: no WebGPU (Dawn, the `webgpu` package) inside Node worker_threads. A WebGPU session there runs, but
// terminating the worker can abort the whole process: in the full test suite, Dawn's bindings threw into the dying
// thread's environment (FATAL ERROR: napi_throw, from processImmediate) after worker.terminate(). Until Dawn's Node
// bindings survive a thread's teardown, WebGPU sessions in Node run on the main thread (where runs are already
// asynchronous on the GPU); CPU sessions and fine-tuning run in Node workers; browsers' module workers use WebGPU.
refuseWebGpu(
  new DeviceError(
    'NO_WEBGPU',
    "WebGPU is not available inside a Node worker_threads worker (terminating such a worker can abort the process in Dawn's bindings). Create WebGPU sessions on Node's main thread, or use { backend: 'cpu' } in the worker.",
  ),
);
expose(new WorkerHost(), nodeEndpoint(parentPort));
