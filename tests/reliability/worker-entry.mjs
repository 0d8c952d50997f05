// The SDK's Node worker entry (sdk/worker/node-entry.ts) run from source for the worker soak
// (tests/reliability/soak.ts): the same entry createWorker() starts from dist/node/worker.js, through
// tests/fuzz/ts-hooks.mjs, whose transpile cache keeps each of the soak's many worker starts short (the
// uncached hooks of tests/worker/ take tens of seconds per start on a loaded machine).
import { register } from 'node:module';

register('../fuzz/ts-hooks.mjs', import.meta.url);
await import('../../sdk/worker/node-entry.ts');
