import { promises as fs } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DehydrationError } from "../../src/dehydration/device/errors.js";
import { DrainError } from "../../src/dehydration/drain/errors.js";
import { AbortError } from "../../src/errors/abort-error.js";
import { MalformedResponseError } from "../../src/errors/malformed-response-error.js";
import { MatrixApiError } from "../../src/errors/matrix-api-error.js";
import { NetworkError } from "../../src/errors/network-error.js";
import { isSdkError, SdkError } from "../../src/errors/sdk-error.js";
import { TimeoutError } from "../../src/errors/timeout-error.js";
import { UserInteractiveAuthError } from "../../src/errors/user-interactive-auth-error.js";
import { RoomError } from "../../src/rooms/room-errors.js";
import { SecretStorageError } from "../../src/secret-storage/errors.js";
import { StateStoreError } from "../../src/state/state-store.js";

/**
 * `isSdkError` recognises every error class this SDK throws, and nothing else that merely looks
 * like one: Node's errors carry a string `code` too, and DOM exceptions share our class names.
 */

/** One instance of each SDK error class, by the class's name. */
const sdkErrors: Record<string, SdkError> = {
  SdkError: new SdkError("client_closed", "the client was closed"),
  AbortError: new AbortError("the drain"),
  DehydrationError: new DehydrationError("no_key", "no dehydration key"),
  DrainError: new DrainError("aborted", "the drain was aborted", {
    details: { deviceId: "DEVICE", cursor: undefined, pages: 0, events: 0, roomKeys: 0 },
  }),
  MalformedResponseError: new MalformedResponseError("GET", "/_matrix/client/v3/account/whoami", [
    { path: "user_id", code: "invalid_type", expected: "string" },
  ]),
  MatrixApiError: new MatrixApiError({
    status: 404,
    errcode: "M_NOT_FOUND",
    error: "Not found",
    retryAfterMs: undefined,
    softLogout: false,
    kind: "permanent",
    method: "GET",
    path: "/_matrix/client/v3/user/@a:localhost/account_data/m.secret_storage.default_key",
    data: { errcode: "M_NOT_FOUND", error: "Not found" },
  }),
  NetworkError: new NetworkError("POST", "/_matrix/client/v3/keys/claim", {
    cause: new TypeError("fetch failed"),
  }),
  RoomError: new RoomError("room_not_encrypted", "the room has no m.room.encryption state"),
  SecretStorageError: new SecretStorageError("bad_key", "the key does not match its description"),
  StateStoreError: new StateStoreError("corrupt_value", "the stored value is not JSON"),
  TimeoutError: new TimeoutError("GET", "/_matrix/client/versions", 30_000),
  UserInteractiveAuthError: new UserInteractiveAuthError("no_callback", "the server asked for auth"),
};

describe("isSdkError", () => {
  it.each(Object.entries(sdkErrors))("is true for a %s", (name, error) => {
    expect(error.name).toBe(name);
    expect(error).toBeInstanceOf(SdkError);
    expect(typeof error.code).toBe("string");
    expect(isSdkError(error)).toBe(true);
  });

  it("covers every error class the root entry point exports", async () => {
    const root: Record<string, unknown> = await import("../../src/index.js");
    const exported = Object.entries(root)
      .filter(
        ([, value]) =>
          value === SdkError || (value as { prototype?: unknown })?.prototype instanceof SdkError,
      )
      .map(([name]) => name);
    expect(exported.sort()).toEqual(Object.keys(sdkErrors).sort());
  });

  it("is false for Node's ENOENT, made by hand or by a real failed read", async () => {
    const made = Object.assign(new Error("x"), { code: "ENOENT" });
    const real = await fs.readFile(join(import.meta.dirname, "no-such-file.json")).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(real).toMatchObject({ code: "ENOENT" });
    expect(real).toBeInstanceOf(Error);
    expect(isSdkError(made)).toBe(false);
    expect(isSdkError(real)).toBe(false);
  });

  it("is false for the platform's AbortError and TimeoutError DOMExceptions, despite their names", () => {
    const aborted = new DOMException("The operation was aborted.", "AbortError");
    const fromSignal = AbortSignal.abort().reason as unknown;
    const timedOut = new DOMException("The operation timed out.", "TimeoutError");

    expect(aborted).toBeInstanceOf(Error);
    expect(fromSignal).toMatchObject({ name: "AbortError" });
    for (const error of [aborted, fromSignal, timedOut]) expect(isSdkError(error)).toBe(false);
  });

  it("is false for plain objects with an SDK error's name and code, and for other values", () => {
    const lookalikes: unknown[] = [
      { name: "SdkError", code: "client_closed", message: "the client was closed" },
      { name: "NetworkError", code: "network_error" },
      { ...sdkErrors.MatrixApiError },
      Object.assign(new Error("no code"), { name: "SdkError" }),
      Object.assign(new Error("numeric code"), { name: "NetworkError", code: 7 }),
      Object.assign(new Error("another library's"), { name: "HTTPError", code: "ERR_HTTP" }),
      "SdkError",
      undefined,
      null,
    ];
    for (const value of lookalikes) expect(isSdkError(value)).toBe(false);
  });
});
