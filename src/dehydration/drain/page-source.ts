import { isMatrixApiError } from "../../errors/matrix-api-error.js";
import type { MatrixHttp } from "../../http/types.js";
import { dehydratedDeviceEventsPath } from "../device/names.js";
import { dehydratedDeviceEventsResponseSchema } from "../device/wire-schemas.js";
import type { DrainPage, DrainPageRequest, DrainPageSource } from "./drain-loop.js";
import { type EventsVariant, fallbackVariant, initialEventsVariant, planPageRequest } from "./pagination.js";

export interface HttpDrainPageSourceOptions {
  /** The variant this server is known to speak (remembered from an earlier session). */
  variant?: EventsVariant | undefined;
  /** Told when the server turned out to speak another variant than the one remembered. */
  onVariantLearned?: ((variant: EventsVariant) => void) | undefined;
}

/**
 * Fetches pages over the SDK's transport and negotiates the wire variant once per server: the GET
 * form first (MSC3814 as it stands), the POST form after a 405 or a 404 `M_UNRECOGNIZED`. What
 * answered is remembered for every later page and drain. Pages are sent with `retry: "safe"`:
 * fetching never deletes messages, so repeating a request after a lost response is harmless, and
 * the transport's backoff on the injected clock handles 5xx, 429 and dropped connections.
 */
export class HttpDrainPageSource implements DrainPageSource {
  readonly #http: MatrixHttp;
  readonly #onVariantLearned: ((variant: EventsVariant) => void) | undefined;
  #variant: EventsVariant | undefined;
  /** Cleared once the server refused a request with `limit` and took the same one without it. */
  #sendLimit = true;

  constructor(http: MatrixHttp, options: HttpDrainPageSourceOptions = {}) {
    this.#http = http;
    this.#variant = options.variant;
    this.#onVariantLearned = options.onVariantLearned;
  }

  /** The variant that last answered, or `undefined` before the first page. */
  get variant(): EventsVariant | undefined {
    return this.#variant;
  }

  async fetchPage(request: DrainPageRequest): Promise<DrainPage> {
    // The id is unpadded base64 (contains `/` and `+`): one encoded path segment.
    const path = dehydratedDeviceEventsPath(request.deviceId);
    let variant = this.#variant ?? initialEventsVariant;
    let sendLimit = this.#sendLimit;
    for (;;) {
      const plan = planPageRequest({ variant, cursor: request.cursor, limit: request.limit, sendLimit });
      try {
        const body = await this.#http.request({
          method: plan.method,
          path,
          query: plan.query,
          body: plan.body,
          schema: dehydratedDeviceEventsResponseSchema,
          retry: "safe",
          signal: request.signal,
        });
        if (this.#variant !== variant) {
          this.#variant = variant;
          this.#onVariantLearned?.(variant);
        }
        if (!sendLimit) this.#sendLimit = false;
        return { events: body.events, nextBatch: body.next_batch ?? undefined, variant };
      } catch (error) {
        const next = isMatrixApiError(error) ? fallbackVariant(variant, error) : undefined;
        if (next !== undefined) {
          variant = next;
          continue;
        }
        // `limit` is not in every server's definition of the call: a server that rejects the
        // request with it is asked once more without it, and remembered only if that works (a 400
        // for a bad token fails the same way without the limit).
        if (sendLimit && request.limit !== undefined && isMatrixApiError(error) && error.status === 400) {
          sendLimit = false;
          continue;
        }
        throw error;
      }
    }
  }
}
