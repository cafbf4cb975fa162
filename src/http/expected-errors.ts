import { isMatrixApiError } from "../errors/matrix-api-error.js";

/**
 * Turns an expected non-result into a value: `undefined` when the request fails with a 4xx whose
 * errcode is listed (e.g. `M_NOT_FOUND` for account data never set), the error otherwise.
 *
 *   const content = await orUndefinedOn(http.request(getAccountData), ["M_NOT_FOUND"]);
 */
export async function orUndefinedOn<T>(
  promise: Promise<T>,
  errcodes: readonly string[],
): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (
      isMatrixApiError(err) &&
      err.status >= 400 &&
      err.status < 500 &&
      err.errcode !== undefined &&
      errcodes.includes(err.errcode)
    ) {
      return undefined;
    }
    throw err;
  }
}
