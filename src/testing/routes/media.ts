import type { Profile } from "../profiles.js";
import { newMediaId } from "../random-ids.js";
import { MatrixError, type MockResponse, type Route, type RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";

/**
 * A minimal content repository (Client-Server spec, "Content repository"): upload, and download
 * through the authenticated endpoints (MSC3916, spec v1.11). matrix-js-sdk needs both for
 * MSC4268 history sharing: `invite()` uploads an encrypted key bundle, `joinRoom()` downloads it.
 *
 * As Synapse with its default `enable_authenticated_media`, the old unauthenticated download path
 * answers 404 for media uploaded now. No thumbnails, previews or remote media (no federation).
 */

type Ctx = RouteContext<ServerState, Profile>;

/** Synapse's default `max_upload_size` (50 MiB); the mock's request-size limit may be lower. */
const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

function upload(ctx: Ctx): MockResponse {
  const caller = ctx.caller();
  const bytes = ctx.rawBody ?? new Uint8Array();
  if (bytes.byteLength > MAX_UPLOAD_BYTES) {
    throw new MatrixError(413, "M_TOO_LARGE", `Uploaded content is too large (>${MAX_UPLOAD_BYTES})`);
  }
  const filename = ctx.query.get("filename") ?? undefined;
  const mediaId = newMediaId();
  ctx.state.media.put(mediaId, {
    bytes,
    contentType: ctx.headers.get("content-type") ?? "application/octet-stream",
    filename,
    uploader: caller.userId,
  });
  return { status: 200, body: { content_uri: `mxc://${ctx.state.serverName}/${mediaId}` } };
}

function download(ctx: Ctx): MockResponse {
  ctx.caller();
  const media =
    ctx.params.serverName === ctx.state.serverName ? ctx.state.media.get(ctx.params.mediaId!) : undefined;
  if (!media) throw new MatrixError(404, "M_NOT_FOUND", "Not found");
  const filename = ctx.params.fileName ?? media.filename;
  return {
    status: 200,
    body: undefined,
    bytes: media.bytes.slice(),
    headers: {
      "Content-Type": media.contentType,
      // Synapse serves everything as an attachment unless the type is known to be safe inline.
      "Content-Disposition": filename
        ? `attachment; filename*=utf-8''${encodeURIComponent(filename)}`
        : "attachment",
      "Content-Security-Policy":
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
      "Cross-Origin-Resource-Policy": "cross-origin",
    },
  };
}

function unauthenticatedDownload(): MockResponse {
  throw new MatrixError(404, "M_NOT_FOUND", "Not found");
}

export const mediaRoutes: Route<ServerState, Profile>[] = [
  ...(["r0", "v3"] as const).flatMap((v): Route<ServerState, Profile>[] => [
    { method: "POST", pattern: `/_matrix/media/${v}/upload`, rawBody: true, handler: upload },
    {
      method: "GET",
      pattern: `/_matrix/media/${v}/download/{serverName}/{mediaId}`,
      unauthenticated: true,
      handler: unauthenticatedDownload,
    },
    {
      method: "GET",
      pattern: `/_matrix/media/${v}/download/{serverName}/{mediaId}/{fileName}`,
      unauthenticated: true,
      handler: unauthenticatedDownload,
    },
  ]),
  { method: "GET", pattern: "/_matrix/client/v1/media/download/{serverName}/{mediaId}", handler: download },
  {
    method: "GET",
    pattern: "/_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}",
    handler: download,
  },
  {
    method: "GET",
    pattern: "/_matrix/client/v1/media/config",
    handler: (ctx) => {
      ctx.caller();
      return { status: 200, body: { "m.upload.size": MAX_UPLOAD_BYTES } };
    },
  },
];
