import { SdkError } from "../errors/sdk-error.js";
import { orUndefinedOn } from "../http/expected-errors.js";
import { matrixPath } from "../http/path.js";
import { accountDataResponseSchema } from "../http/schemas/account-data.js";
import { emptyResponseSchema } from "../http/schemas/empty.js";
import type { MatrixHttp } from "../http/types.js";
import type { SecretStorageSetupErrorCode } from "./errors.js";
import type { AccountDataAccess } from "./secret-storage.js";

/** Options of `createHttpAccountData`. */
export interface HttpAccountDataOptions {
  /** Aborts every request made through this accessor (e.g. when the client closes). */
  signal?: AbortSignal;
}

/**
 * The user's global account data over the Client-Server API ("Client Config"):
 * `GET`/`PUT /_matrix/client/v3/user/{userId}/account_data/{type}`. A type never set is the
 * server's 404 `M_NOT_FOUND`, which is an expected answer here, so it becomes `undefined`; every
 * other failure is the transport's typed error.
 *
 * The PUT replaces the whole content, so sending it again has the same effect: it is marked safe
 * for the transport to retry.
 */
export function createHttpAccountData(
  http: MatrixHttp,
  userId: string,
  options: HttpAccountDataOptions = {},
): AccountDataAccess {
  if (typeof userId !== "string" || userId === "") {
    throw new SdkError<SecretStorageSetupErrorCode>(
      "invalid_user_id",
      "account data needs the user id of the access token's owner",
    );
  }
  const path = (type: string) => matrixPath`/_matrix/client/v3/user/${userId}/account_data/${type}`;
  const signal = options.signal;
  return {
    async get(type) {
      return orUndefinedOn(
        http.request({
          method: "GET",
          path: path(type),
          schema: accountDataResponseSchema,
          retry: "safe",
          signal,
        }),
        ["M_NOT_FOUND"],
      );
    },
    async set(type, content) {
      await http.request({
        method: "PUT",
        path: path(type),
        body: content,
        schema: emptyResponseSchema,
        retry: "safe",
        signal,
      });
    },
  };
}
