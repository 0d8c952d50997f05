import type { Endpoint } from 'comlink';

/** The parts of a worker_threads Worker or MessagePort (Node's EventEmitter style) that comlink needs. */
export interface NodeMessagePort {
  postMessage(value: unknown, transferList?: readonly Transferable[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  off(event: 'message', listener: (value: unknown) => void): unknown;
  start?(): void;
}

/**
 * Adapts a Node port to comlink's Endpoint (the browser's MessagePort shape): Node delivers the message itself,
 * the DOM delivers an event whose `data` is the message.
 */
export function nodeEndpoint(port: NodeMessagePort): Endpoint {
  const handlers = new WeakMap<object, (value: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: Transferable[]) => port.postMessage(message, transfer),
    addEventListener(_type: string, listener: EventListenerOrEventListenerObject) {
      const handler = (data: unknown) => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      handlers.set(listener, handler);
      port.on('message', handler);
    },
    removeEventListener(_type: string, listener: EventListenerOrEventListenerObject) {
      const handler = handlers.get(listener);
      if (!handler) return;
      port.off('message', handler);
      handlers.delete(listener);
    },
    ...(port.start ? { start: () => port.start!() } : {}),
  };
}
