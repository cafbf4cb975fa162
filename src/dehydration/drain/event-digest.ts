import { sha256Hex } from "../../crypto/sha256.js";

/**
 * A digest of a run of to-device events, to recognise events already imported when a page is read
 * again (the last page of a completed drain: see `DrainPosition.skip`). SHA-256 over each event's
 * JSON, through WebCrypto: a server cannot make other events pass for the imported ones, and a
 * mismatch only means the events are imported again (harmless).
 */
export async function digestEvents(events: readonly unknown[]): Promise<string> {
  return sha256Hex(events.map((event) => JSON.stringify(event)).join("\n"));
}
