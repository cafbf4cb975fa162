import type { Profile } from "../profiles.js";
import type { Route } from "../route.js";
import type { ServerState } from "../state/server-state.js";

/** `/versions` and `/capabilities`: what a client reads first to learn what the server supports. */
export const discoveryRoutes: Route<ServerState, Profile>[] = [
  {
    method: "GET",
    pattern: "/_matrix/client/versions",
    unauthenticated: true,
    handler: (ctx) => {
      // Synapse checks a token if one is sent (its answer can depend on the user), so a stale
      // token fails here with 401 even though the endpoint needs none.
      const sentToken = ctx.headers.has("authorization") || ctx.query.has("access_token");
      if (sentToken) ctx.caller();
      const headers: Record<string, string> = { Vary: "Authorization" };
      // Unauthenticated answers depend only on configuration, so Synapse lets caches keep them.
      if (!sentToken)
        headers["Cache-Control"] = "public, max-age=600, s-maxage=3600, stale-while-revalidate=600";
      return {
        status: 200,
        body: { versions: [...ctx.profile.versions], unstable_features: { ...ctx.profile.unstableFeatures } },
        headers,
      };
    },
  },
  {
    method: "GET",
    pattern: "/_matrix/client/v3/capabilities",
    handler: (ctx) => ({ status: 200, body: { capabilities: structuredClone(ctx.profile.capabilities) } }),
  },
];
