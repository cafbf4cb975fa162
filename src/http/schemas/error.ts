import { z } from "zod";

/**
 * The standard error body (spec "Standard error response"): `errcode` is required, everything
 * else optional. Fields we only read for information are `.catch(undefined)` so a server that
 * puts a wrong type there does not hide the errcode.
 */
export const matrixErrorBodySchema = z.looseObject({
  errcode: z.string(),
  error: z.string().optional().catch(undefined),
  retry_after_ms: z.number().nonnegative().optional().catch(undefined),
  soft_logout: z.boolean().optional().catch(undefined),
});

export type MatrixErrorBody = z.infer<typeof matrixErrorBodySchema>;

/**
 * A User-Interactive Authentication challenge (spec "User-Interactive Authentication API"): a 401
 * whose body lists `flows`; it also carries `errcode`/`error` when a stage failed. Those two are
 * informational, so a wrong type there does not hide the challenge.
 */
export const uiaResponseSchema = z.looseObject({
  flows: z.array(z.looseObject({ stages: z.array(z.string()) })),
  session: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  completed: z.array(z.string()).optional(),
  errcode: z.string().optional().catch(undefined),
  error: z.string().optional().catch(undefined),
});

export type UiaResponse = z.infer<typeof uiaResponseSchema>;
