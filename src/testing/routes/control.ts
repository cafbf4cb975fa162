import { z } from "zod";
import type { MockControl } from "../control.js";
import type { FaultSettings, ScriptedFailure } from "../faults.js";
import type { Profile } from "../profiles.js";
import type { RequestLogEntry } from "../request-log.js";
import { MatrixError, type Route } from "../route.js";
import { parseBody } from "../validation.js";
import { asBadParam, camelCased } from "./control-wire.js";
import { dehydrationControlRoutes } from "./dehydration-control.js";
import { federationControlRoutes } from "./federation-control.js";
import { injectedDeviceControlRoutes } from "./injected-device-control.js";
import { sessionControlRoutes } from "./session-control.js";
import { slidingSyncControlRoutes } from "./sliding-sync-control.js";
import { toDeviceControlRoutes } from "./to-device-control.js";

/**
 * The control API over HTTP, under `/_mock/`: the same calls as `MockControl`, snake_case on the
 * wire (`control-wire.ts`). Control calls are never delayed, faulted or logged. Feature controls
 * are in `*-control.ts` beside this file.
 */

const faultSettingsBody = z
  .object({
    latency_ms: z.number().optional(),
    server_error_rate: z.number().optional(),
    rate_limit_rate: z.number().optional(),
    drop_rate: z.number().optional(),
    lost_response_rate: z.number().optional(),
    server_error_status: z.number().int().optional(),
    retry_after_ms: z.number().int().optional(),
    seed: z.number().int().optional(),
  })
  .strict();

const failureBody = z
  .object({
    method: z.enum(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]).optional(),
    path: z.string().startsWith("/"),
    times: z.number().int().positive().optional(),
    when: z.enum(["before", "after"]).optional(),
    drop: z.boolean().optional(),
    // 2xx only with `body` / `raw_body`: `scriptFailure` says so with its own message.
    status: z.number().int().min(200).max(599).optional(),
    errcode: z.string().optional(),
    error: z.string().optional(),
    retry_after_ms: z.number().int().nonnegative().optional(),
    body: z.unknown().optional(),
    raw_body: z.string().optional(),
  })
  .strict();

const createUserBody = z
  .object({
    localpart: z.string(),
    password: z.string().optional(),
    device_id: z.string().min(1).optional(),
    display_name: z.string().optional(),
    server: z.string().optional(),
  })
  .strict();

function faultsWire(s: FaultSettings) {
  return {
    latency_ms: s.latencyMs,
    server_error_rate: s.serverErrorRate,
    rate_limit_rate: s.rateLimitRate,
    drop_rate: s.dropRate,
    lost_response_rate: s.lostResponseRate,
    server_error_status: s.serverErrorStatus,
    retry_after_ms: s.retryAfterMs,
    seed: s.seed,
  };
}

function failureWire(f: ScriptedFailure) {
  return {
    id: f.id,
    method: f.method ?? null,
    path: f.path,
    remaining: f.remaining,
    when: f.when,
    drop: f.drop,
    status: f.status,
    errcode: f.errcode ?? null,
    error: f.error ?? null,
    retry_after_ms: f.retryAfterMs ?? null,
    body: f.body ?? null,
    raw_body: f.rawBody ?? null,
  };
}

function logEntryWire(e: RequestLogEntry) {
  return {
    seq: e.seq,
    method: e.method,
    path: e.path,
    query: e.query,
    body: e.body ?? null,
    user_id: e.userId ?? null,
    status: e.status,
    errcode: e.errcode ?? null,
    dropped: e.dropped,
    fault: e.fault ?? null,
    fault_kind: e.faultKind ?? null,
    internal_error: e.internalError ?? null,
    started_at: e.startedAt,
    ended_at: e.endedAt,
    start_order: e.startOrder,
    end_order: e.endOrder,
  };
}

export const controlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "GET",
    pattern: "/_mock/faults",
    handler: ({ state }) => ({ status: 200, body: faultsWire(state.faults()) }),
  },
  {
    method: "PUT",
    pattern: "/_mock/faults",
    handler: (ctx) => {
      const changes = camelCased(parseBody(ctx, faultSettingsBody));
      return { status: 200, body: faultsWire(asBadParam(() => ctx.state.setFaults(changes))) };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/failures",
    handler: ({ state }) => ({ status: 200, body: { failures: state.scriptedFailures().map(failureWire) } }),
  },
  {
    method: "POST",
    pattern: "/_mock/failures",
    handler: (ctx) => {
      const spec = camelCased(parseBody(ctx, failureBody));
      const failure = asBadParam(() => ctx.state.scriptFailure(spec));
      return { status: 200, body: failureWire(failure) };
    },
  },
  {
    method: "DELETE",
    pattern: "/_mock/failures",
    handler: ({ state }) => {
      state.clearScriptedFailures();
      return { status: 200, body: {} };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/requests",
    handler: ({ state }) => ({ status: 200, body: { requests: state.requestLog().map(logEntryWire) } }),
  },
  {
    method: "DELETE",
    pattern: "/_mock/requests",
    handler: ({ state }) => {
      state.clearRequestLog();
      return { status: 200, body: {} };
    },
  },
  {
    method: "POST",
    pattern: "/_mock/reset",
    handler: ({ state }) => {
      state.reset();
      return { status: 200, body: {} };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/profile",
    handler: ({ profile }) => ({ status: 200, body: profile }),
  },
  {
    method: "POST",
    pattern: "/_mock/users",
    handler: (ctx) => {
      const { localpart, ...options } = parseBody(ctx, createUserBody);
      const created = asBadParam(() => ctx.state.createUser(localpart, camelCased(options)));
      if (!created) throw new MatrixError(400, "M_USER_IN_USE", "User ID already taken.");
      return {
        status: 200,
        body: { user_id: created.userId, device_id: created.deviceId, access_token: created.accessToken },
      };
    },
  },
  ...slidingSyncControlRoutes,
  ...dehydrationControlRoutes,
  ...sessionControlRoutes,
  ...toDeviceControlRoutes,
  ...injectedDeviceControlRoutes,
  ...federationControlRoutes,
];
