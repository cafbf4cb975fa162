import { z } from "zod";
import type { MockControl } from "../control.js";
import type { Profile } from "../profiles.js";
import type { Route } from "../route.js";
import type { TokenLifetimes } from "../state/session-token-store.js";
import { parseBody } from "../validation.js";
import { asBadParam, camelCased } from "./control-wire.js";

/**
 * Token controls over HTTP (see `MockControl.expireAccessToken` and `setTokenLifetimes`):
 * - `POST /_mock/expire_access_token` `{access_token, soft_logout?}` → `{}`; an unknown token →
 *   400 `M_INVALID_PARAM`;
 * - `GET | PUT /_mock/token_lifetimes` `{access_token_ms?, refresh_token_ms?}` (each a positive
 *   integer or `null`) → both values.
 */

const expireBody = z.object({ access_token: z.string(), soft_logout: z.boolean().optional() }).strict();

const lifetime = z.number().nullable().optional();
const lifetimesBody = z.object({ access_token_ms: lifetime, refresh_token_ms: lifetime }).strict();

function lifetimesWire(l: TokenLifetimes) {
  return { access_token_ms: l.accessTokenMs, refresh_token_ms: l.refreshTokenMs };
}

export const sessionControlRoutes: Route<MockControl, Profile>[] = [
  {
    method: "POST",
    pattern: "/_mock/expire_access_token",
    handler: (ctx) => {
      const { access_token, ...options } = parseBody(ctx, expireBody);
      asBadParam(() => ctx.state.expireAccessToken(access_token, camelCased(options)));
      return { status: 200, body: {} };
    },
  },
  {
    method: "GET",
    pattern: "/_mock/token_lifetimes",
    handler: ({ state }) => ({ status: 200, body: lifetimesWire(state.tokenLifetimes()) }),
  },
  {
    method: "PUT",
    pattern: "/_mock/token_lifetimes",
    handler: (ctx) => {
      const changes = camelCased(parseBody(ctx, lifetimesBody));
      return { status: 200, body: lifetimesWire(asBadParam(() => ctx.state.setTokenLifetimes(changes))) };
    },
  },
];
