// The worker entry for tests: the SDK's real entry (sdk/worker/node-entry.ts), run from source through ts-hooks.mjs.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
await import('../../sdk/worker/node-entry.ts');
