import type { Remote } from 'comlink';
import type { WorkerHost } from './host.js';
import { fromWireError } from './wire.js';

/** @internal A worker as the main thread sees it. */
export interface Connection {
  remote: Remote<WorkerHost>;
  /** Rejects once the worker is gone (terminated, crashed): every call races it. */
  gone: Promise<never>;
  nextRequest(): number;
}

/** @internal Calls the worker; errors come back as their own classes, and a gone worker rejects. */
export async function call<T>(c: Connection, fn: () => Promise<T>): Promise<T> {
  try {
    return await Promise.race([fn(), c.gone]);
  } catch (e) {
    throw fromWireError(e);
  }
}
