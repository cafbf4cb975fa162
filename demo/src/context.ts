import type { E2eeClient, SecretStorageKey } from "matrix-e2ee-devices";
import type { MockHomeserver } from "matrix-e2ee-devices/testing";
import type { Account, Homeserver, Session } from "./accounts.js";
import type { LogPanel } from "./log-panel.js";
import type { RetryCounter } from "./observe.js";
import type { NewLoginProgress } from "./steps/new-login.js";

/**
 * What the steps share: the in-page server, the log, and how far each step got. The SDK retries
 * only what is safe to repeat; a failed register, login or createRoom is the app's to retry, so a
 * step clicked again resumes from what it already did.
 */
export interface DemoContext extends Homeserver {
  readonly hs: MockHomeserver;
  readonly log: LogPanel;
  readonly retries: RetryCounter;
  alice?: Account;
  /** Alice's first device, until she closes the app in step 2. */
  aliceFirst?: { session: Session; client?: E2eeClient; secretStorageKey?: SecretStorageKey };
  /** Set by step 2; the id is public (it is the device's Curve25519 key). */
  dehydratedDeviceId?: string;
  bob?: BobProgress;
  /** To-device messages in the dehydrated device's inbox once Bob is done (step 3). */
  waitingToDevice?: number;
  /** Step 4's login, kept across failed attempts: a retry resumes on the same device. */
  newLogin?: NewLoginProgress;
}

export interface BobProgress {
  account: Account;
  session: Session;
  client?: E2eeClient;
  /** Olm sessions with Alice's devices are set up. */
  sessionsReady: boolean;
  roomsDone: number;
  /** Encrypted messages sent so far, over every room. */
  messagesSent: number;
  /** The room being filled when the step failed. */
  current?: { roomId: string; recipients?: string[]; messagesSent: number };
}
