import { z } from "zod";
import { MalformedResponseError } from "../errors/malformed-response-error.js";
import { toFieldIssue } from "../http/send-attempt.js";
import type { ClassicSyncE2eeResponse, E2eeFields, SlidingSyncE2eeResponse } from "./e2ee-changes.js";

/*
 * The parts of sync responses the encryption loop reads. Loose objects: everything else (rooms,
 * lists, account data) is the app's. `null` is read as absent — servers written in languages with
 * optional types send it — so it means "unchanged" on sliding sync, like an omitted field.
 */

const count = z.number().int().nonnegative();
const userIds = z.array(z.string()).nullish();
const events = z.array(z.record(z.string(), z.unknown()));

const e2eeFieldsShape = {
  device_one_time_keys_count: z.record(z.string(), count).nullish(),
  device_unused_fallback_key_types: z.array(z.string()).nullish(),
  device_lists: z.looseObject({ changed: userIds, left: userIds }).nullish(),
};

/** A simplified sliding sync (MSC4186) response with the MSC3884 and MSC3885 extensions. */
export const slidingSyncResponseSchema = z.looseObject({
  pos: z.string(),
  extensions: z
    .looseObject({
      e2ee: z.looseObject(e2eeFieldsShape).nullish(),
      to_device: z.looseObject({ next_batch: z.string().nullish(), events: events.nullish() }).nullish(),
    })
    .nullish(),
});

/** A classic `/sync` response: the e2ee fields sit at the top level. */
export const classicSyncResponseSchema = z.looseObject({
  next_batch: z.string(),
  to_device: z.looseObject({ events: events.nullish() }).nullish(),
  ...e2eeFieldsShape,
});

export type SlidingSyncResponse = z.infer<typeof slidingSyncResponseSchema>;
export type ClassicSyncResponse = z.infer<typeof classicSyncResponseSchema>;

function e2eeFields(wire: z.infer<z.ZodObject<typeof e2eeFieldsShape>>): E2eeFields {
  const lists = wire.device_lists ?? undefined;
  return {
    deviceOneTimeKeysCount: wire.device_one_time_keys_count ?? undefined,
    deviceUnusedFallbackKeyTypes: wire.device_unused_fallback_key_types ?? undefined,
    deviceLists:
      lists === undefined
        ? undefined
        : { changed: lists.changed ?? undefined, left: lists.left ?? undefined },
  };
}

/** The sliding-sync response as the reducer reads it. */
export function slidingSyncE2ee(response: SlidingSyncResponse): SlidingSyncE2eeResponse {
  const e2ee = response.extensions?.e2ee ?? undefined;
  const toDevice = response.extensions?.to_device ?? undefined;
  return {
    kind: "sliding",
    e2ee: e2ee === undefined ? undefined : e2eeFields(e2ee),
    toDevice:
      toDevice === undefined
        ? undefined
        : { events: toDevice.events ?? [], nextBatch: toDevice.next_batch ?? undefined },
  };
}

/** The classic response as the reducer reads it. */
export function classicSyncE2ee(response: ClassicSyncResponse): ClassicSyncE2eeResponse {
  return {
    kind: "classic",
    ...e2eeFields(response),
    toDeviceEvents: response.to_device?.events ?? undefined,
  };
}

/**
 * A response the app hands over (its own sync loop), checked like one the SDK fetched: a
 * `MalformedResponseError` naming the request it answers (sliding sync is a `POST`, classic
 * `/sync` a `GET`) and the fields, never their values; nothing is processed then.
 */
export function parseHandedResponse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  request: { method: "GET" | "POST"; path: string },
): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new MalformedResponseError(request.method, request.path, parsed.error.issues.map(toFieldIssue));
  }
  return parsed.data;
}
