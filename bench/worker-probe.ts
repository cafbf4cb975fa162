/**
 * Runs inside the bench's worker client (`runInWorker`): decrypts the probe message with the
 * in-worker machine, the one the drain imported the room keys into, and returns its body.
 */
import { DecryptionSettings, RoomId, TrustRequirement } from "@matrix-org/matrix-sdk-crypto-wasm";
import type { E2eeClient } from "../src/client.js";

export async function decryptProbe(client: E2eeClient, event: string, roomId: string): Promise<string> {
  let decrypted: Awaited<ReturnType<E2eeClient["olmMachine"]["decryptRoomEvent"]>>;
  try {
    decrypted = await client.olmMachine.decryptRoomEvent(
      event,
      new RoomId(roomId),
      new DecryptionSettings(TrustRequirement.Untrusted),
    );
  } catch (cause) {
    // crypto-wasm throws a `MegolmDecryptionError`, not an `Error`: it would cross the thread as
    // the string "[object Object]". Its code and description are what the bench's abort should say.
    const { code, description } = (cause ?? {}) as { code?: unknown; description?: unknown };
    throw new Error(`the probe did not decrypt in the worker: code ${String(code)}, ${String(description)}`);
  }
  return String(JSON.parse(decrypted.event).content.body);
}
