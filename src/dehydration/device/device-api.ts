import { isMatrixApiError, type MatrixApiError } from "../../errors/matrix-api-error.js";
import type { MatrixHttp } from "../../http/types.js";
import { DehydrationError } from "./errors.js";
import { DEHYDRATED_DEVICE_PATH } from "./names.js";
import {
  type DehydratedDeviceInfo,
  dehydratedDeviceIdResponseSchema,
  dehydratedDeviceResponseSchema,
  type PutDehydratedDeviceBody,
} from "./wire-schemas.js";

/** What `GET /dehydrated_device` told us; every expected answer is a value. */
export type DehydratedDeviceLookup =
  | { status: "found"; device: DehydratedDeviceInfo }
  | { status: "none" }
  | { status: "unsupported" };

/**
 * MSC3814 support is probed, not advertised: 404 `M_NOT_FOUND` means "supported, no device yet",
 * `M_UNRECOGNIZED` means the server does not know the endpoint. A 404 without an errcode is a proxy
 * or server that never routed the path: unsupported as well.
 */
function classifyMissing(error: unknown): "none" | "unsupported" | undefined {
  if (!isMatrixApiError(error)) return undefined;
  if (error.errcode === "M_UNRECOGNIZED" && error.status >= 400 && error.status < 500) return "unsupported";
  if (error.status !== 404) return undefined;
  if (error.errcode === "M_NOT_FOUND") return "none";
  return error.errcode === undefined ? "unsupported" : undefined;
}

/** `GET /dehydrated_device`: the user's current device, none, or "the server has no MSC3814". */
export async function fetchDehydratedDevice(
  http: MatrixHttp,
  signal?: AbortSignal,
): Promise<DehydratedDeviceLookup> {
  try {
    const body = await http.request({
      method: "GET",
      path: DEHYDRATED_DEVICE_PATH,
      schema: dehydratedDeviceResponseSchema,
      retry: "safe",
      signal,
    });
    return { status: "found", device: { deviceId: body.device_id, deviceData: body.device_data } };
  } catch (error) {
    const missing = classifyMissing(error);
    if (missing !== undefined) return { status: missing };
    throw error;
  }
}

/**
 * `PUT /dehydrated_device` in one request, so the device, its keys, one-time keys and fallback key
 * appear atomically. Sending the same body again replaces the device by itself, so the transport may
 * repeat it after a lost response. Resolves to the id the server acknowledged.
 */
export async function putDehydratedDevice(
  http: MatrixHttp,
  body: PutDehydratedDeviceBody,
  signal?: AbortSignal,
): Promise<string> {
  try {
    const response = await http.request({
      method: "PUT",
      path: DEHYDRATED_DEVICE_PATH,
      body,
      schema: dehydratedDeviceIdResponseSchema,
      retry: "safe",
      signal,
    });
    return response.device_id;
  } catch (error) {
    throw unsupportedOr(error);
  }
}

/**
 * `DELETE /dehydrated_device`: the id of the deleted device, or `undefined` when there was none
 * (404 `M_NOT_FOUND`) or the server has no MSC3814 — either way no device is left. Repeating it is
 * harmless, so the transport may retry it.
 */
export async function deleteDehydratedDevice(
  http: MatrixHttp,
  signal?: AbortSignal,
): Promise<string | undefined> {
  try {
    const response = await http.request({
      method: "DELETE",
      path: DEHYDRATED_DEVICE_PATH,
      schema: dehydratedDeviceIdResponseSchema,
      retry: "safe",
      signal,
    });
    return response.device_id;
  } catch (error) {
    if (classifyMissing(error) !== undefined) return undefined;
    throw error;
  }
}

function unsupportedOr(error: unknown): unknown {
  if (classifyMissing(error) !== "unsupported") return error;
  const api = error as MatrixApiError;
  return new DehydrationError("unsupported", "The homeserver does not support dehydrated devices (MSC3814)", {
    cause: api,
    details: { status: api.status, errcode: api.errcode },
  });
}
