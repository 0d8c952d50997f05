/**
 * The module Worker entry for browsers (built to dist/browser/worker.js): hosts InferenceSessions (host.ts) behind
 * one scheduler and exposes them to the client (client.ts) with comlink over the worker's own message port.
 * WebGPU comes from the worker's navigator.gpu.
 */
import { expose } from 'comlink';
import { WorkerHost } from './host.js';

expose(new WorkerHost());
