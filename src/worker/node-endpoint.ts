import type { MessagePort, Worker } from "node:worker_threads";
import type { Endpoint } from "comlink";

/**
 * A Node `worker_threads` port as the DOM-style endpoint Comlink speaks: Node hands a listener the
 * message itself, the DOM a `MessageEvent` with `data`.
 */
export function nodeEndpoint(port: MessagePort | Worker): Endpoint {
  const wrapped = new WeakMap<object, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: Transferable[]) =>
      port.postMessage(message, transfer as never),
    addEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      const onMessage = (data: unknown) => {
        const event = { data } as MessageEvent;
        if (typeof listener === "function") listener(event);
        else listener.handleEvent(event);
      };
      wrapped.set(listener, onMessage);
      port.on("message", onMessage);
    },
    removeEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      const onMessage = wrapped.get(listener);
      if (onMessage === undefined) return;
      port.off("message", onMessage);
      wrapped.delete(listener);
    },
  };
}
