import {
  CollectStrategy,
  EncryptionAlgorithm,
  EncryptionSettings,
  HistoryVisibility as WasmHistoryVisibility,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import type { SharingStrategy } from "./recipient-plan.js";
import type { HistoryVisibility, RoomEncryption } from "./room-encryption.js";

/** crypto-wasm's settings for a room's outbound session; the caller frees them. */
export function encryptionSettings(room: RoomEncryption, strategy: SharingStrategy): EncryptionSettings {
  const settings = new EncryptionSettings();
  settings.algorithm = EncryptionAlgorithm.MegolmV1AesSha2;
  // crypto-wasm counts the rotation period in microseconds.
  settings.rotationPeriod = BigInt(room.rotationPeriodMs) * 1000n;
  settings.rotationPeriodMessages = BigInt(room.rotationPeriodMessages);
  settings.historyVisibility = wasmVisibility(room.historyVisibility);
  settings.sharingStrategy = collectStrategy(strategy);
  return settings;
}

function collectStrategy(strategy: SharingStrategy): CollectStrategy {
  switch (strategy) {
    case "all_devices":
      return CollectStrategy.allDevices();
    case "error_on_verified_user_problem":
      return CollectStrategy.errorOnUnverifiedUserProblem();
    case "identity_based":
      return CollectStrategy.identityBasedStrategy();
    case "only_trusted_devices":
      return CollectStrategy.onlyTrustedDevices();
  }
}

function wasmVisibility(visibility: HistoryVisibility): WasmHistoryVisibility {
  switch (visibility) {
    case "invited":
      return WasmHistoryVisibility.Invited;
    case "joined":
      return WasmHistoryVisibility.Joined;
    case "shared":
      return WasmHistoryVisibility.Shared;
    case "world_readable":
      return WasmHistoryVisibility.WorldReadable;
  }
}
