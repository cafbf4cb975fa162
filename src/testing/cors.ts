import type { CorsProfile } from "./profiles.js";

/**
 * Permissive CORS as real servers send it (Synapse `set_cors_headers`: any origin, fixed lists of
 * methods and headers), so a browser app can talk to the mock from another origin.
 */
export function corsHeaders(cors: CorsProfile): Record<string, string> {
  return {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": cors.allowMethods,
    "Access-Control-Allow-Headers": cors.allowHeaders,
    "Access-Control-Expose-Headers": cors.exposeHeaders,
  };
}

export function preflightHeaders(cors: CorsProfile): Record<string, string> {
  return {
    ...corsHeaders(cors),
    ...(cors.maxAgeSeconds !== null ? { "Access-Control-Max-Age": String(cors.maxAgeSeconds) } : {}),
    "Content-Length": "0",
  };
}
