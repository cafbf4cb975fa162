import { errorGuard, SdkError } from "./sdk-error.js";

/**
 * The request never produced an HTTP response: connection refused, DNS failure, a dropped
 * connection, a body cut off mid-read. The server may or may not have acted on the request.
 */
export class NetworkError extends SdkError<"network_error"> {
  override name = "NetworkError";
  readonly method: string;
  readonly path: string;

  constructor(method: string, path: string, options: { cause?: unknown } = {}) {
    super("network_error", `${method} ${path} failed: network error`, {
      cause: options.cause,
      details: { method, path },
    });
    this.method = method;
    this.path = path;
  }
}

/** A request that got no HTTP response. */
export const isNetworkError = errorGuard<NetworkError>("NetworkError");
