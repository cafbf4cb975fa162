import { initAsync } from "@matrix-org/matrix-sdk-crypto-wasm";

let loading: Promise<void> | undefined;

/**
 * Loads the crypto-wasm module once per app. Every caller shares one promise, so concurrent callers
 * start one download/compile; a failed load is forgotten so a later call can try again (a flaky
 * network in the browser should not poison the whole session).
 *
 * The wasm module is a peer dependency: the app and this SDK must share one copy, since an
 * `OlmMachine` from one copy is useless to another.
 */
export function loadCryptoWasm(url?: URL | string): Promise<void> {
  if (!loading) {
    loading = initAsync(url).catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
  }
  return loading;
}
