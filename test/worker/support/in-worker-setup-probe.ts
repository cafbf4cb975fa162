import type { E2eeClient } from "../../../src/client.js";
import type { CreateE2eeClientOptions } from "../../../src/client-options.js";

/**
 * A setup module for the worker tests: the options it returns are made inside the worker, where
 * a `fetch` of the app's own can live though it cannot cross a thread.
 */

const seen: string[] = [];

/** A `fetch` that records the path of every request the client makes, tagged with `label`. */
export function recordingFetch(label: string): Partial<CreateE2eeClientOptions> {
  return {
    fetch: (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push(`${label} ${new URL(url).pathname}`);
      return fetch(input, init);
    },
  };
}

/** What the setup's `fetch` recorded (run next to the client with `runInWorker`). */
export function recorded(_client: E2eeClient): string[] {
  return [...seen];
}

export function notAnObject(): unknown {
  return 42;
}
