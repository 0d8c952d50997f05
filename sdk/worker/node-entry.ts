/**
 * The worker_threads entry: hosts InferenceSessions (host.ts) behind one scheduler and exposes them to the client
 * (client.ts) with comlink. Imports the Node entry so file paths and the `webgpu` package work inside the worker.
 */
import { parentPort } from 'node:worker_threads';
import { expose } from 'comlink';
import '../node.js';
import { WorkerHost } from './host.js';
import { nodeEndpoint } from './node-endpoint.js';

if (!parentPort) throw new Error('sdk/worker/node-entry is a worker_threads entry; start it with createWorker().');
expose(new WorkerHost(), nodeEndpoint(parentPort));
