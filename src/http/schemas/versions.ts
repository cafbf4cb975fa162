import { z } from "zod";

/**
 * `GET /_matrix/client/versions` (spec "Server discovery → versions"). `versions` is what we
 * branch on, so it is strict; `unstable_features` is advisory and some servers put non-boolean
 * values there, so a flag counts only when it is exactly `true`.
 */
export const versionsResponseSchema = z
  .looseObject({
    versions: z.array(z.string()),
    unstable_features: z.record(z.string(), z.unknown()).optional(),
  })
  .transform((wire) => ({
    versions: wire.versions,
    unstableFeatures: Object.fromEntries(
      Object.entries(wire.unstable_features ?? {}).map(([name, on]) => [name, on === true]),
    ) as Record<string, boolean>,
  }));

/** The server's spec versions and the unstable features it switched on (`true` only). */
export type ServerVersions = z.output<typeof versionsResponseSchema>;
