import {
  DecryptionSettings,
  TrustRequirement,
  type RehydratedDevice as WasmRehydratedDevice,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { SdkError } from "../../errors/sdk-error.js";

/** The plain `SdkError` code of using a `RehydratedDevice` after `free()`. */
export type RehydratedDeviceErrorCode = "rehydrated_device_released";

/** A room key the rehydrated device passed on to the machine, as plain values. */
export interface ReceivedRoomKey {
  roomId: string;
  sessionId: string;
  /** Curve25519 key of the device that started the session. */
  senderKey: string;
}

/**
 * A dehydrated device opened with the dehydration key (the last link of manager → device →
 * rehydrated device). Feeding it the to-device events queued for the device makes crypto-wasm
 * decrypt them with the device's Olm account and import the room keys into this login's machine.
 * Draining every page is the drainer's work (`drainer.ts`, its engine `drain-loop.ts`); this type
 * handles one batch at a time.
 */
export class RehydratedDevice {
  readonly deviceId: string;
  #inner: WasmRehydratedDevice | undefined;

  /** @internal Made by `DehydrationManager.rehydrate`. */
  constructor(deviceId: string, inner: WasmRehydratedDevice) {
    this.deviceId = deviceId;
    this.#inner = inner;
  }

  /**
   * Decrypts one batch of the device's to-device events (the `events` array of
   * `/dehydrated_device/{id}/events`) and returns the room keys imported from it. Replays and
   * undecryptable events yield nothing, silently, as crypto-wasm does.
   */
  async receiveEvents(
    events: readonly unknown[],
    trustRequirement: TrustRequirement = TrustRequirement.Untrusted,
  ): Promise<ReceivedRoomKey[]> {
    const inner = this.#inner;
    if (inner === undefined)
      throw new SdkError<RehydratedDeviceErrorCode>(
        "rehydrated_device_released",
        "This rehydrated device was already released",
      );
    // crypto-wasm consumes the settings on every call; reusing one fails with a null pointer.
    const settings = new DecryptionSettings(trustRequirement);
    const infos = await inner.receiveEvents(JSON.stringify(events), settings);
    return infos.map((info) => {
      const roomId = info.roomId;
      const senderKey = info.senderKey;
      const key = { roomId: roomId.toString(), sessionId: info.sessionId, senderKey: senderKey.toBase64() };
      roomId.free();
      senderKey.free();
      info.free();
      return key;
    });
  }

  /** Releases the wasm object; the device cannot receive events afterwards. */
  free(): void {
    this.#inner?.free();
    this.#inner = undefined;
  }
}
