import type { E2eeClient, SecretStorageKey } from "matrix-e2ee-devices";
import type { MockHomeserver } from "matrix-e2ee-devices/testing";
import type { Account, Homeserver, Session } from "./accounts.js";
import type { LogPanel } from "./log-panel.js";
import type { RetryCounter } from "./observe.js";
import type { NewLoginProgress } from "./steps/new-login.js";
import type { DaveProgress } from "./steps/remote-friend.js";

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
  /** Alice's first device (step 1); it stays on her device list after she closes the app. */
  aliceFirstDeviceId?: string;
  /** Set by step 2; the id is public (it is the device's Curve25519 key). */
  dehydratedDeviceId?: string;
  /** The dehydrated device the server slipped into Alice's device list, if it did. */
  rogueDeviceId?: string;
  bob?: BobProgress;
  /** To-device messages in the dehydrated device's inbox after Bob's latest send. */
  waitingToDevice?: number;
  /** Step 4's login, kept across failed attempts: a retry resumes on the same device. */
  newLogin?: NewLoginProgress;
  /** Card 5: Dave, a user of another server, and the room Bob shares with him. */
  dave?: DaveProgress;
}

export interface BobProgress {
  account: Account;
  session: Session;
  /** Open from step 3 on, until the demo starts over: Bob stays online. */
  client?: E2eeClient;
  /** Where Bob's next `/sync` continues. */
  since?: string;
  /** The rooms he filled, in order. */
  rooms: BobRoom[];
  /** Encrypted messages sent so far, over every room. */
  messagesSent: number;
  /** The room being filled when the step failed. */
  current?: BobRoom & { messagesSent: number };
  /** "Bob sends another message" that failed: a retry sends it with the same transaction id. */
  pendingExtra?: { room: BobRoom; body: string; txnId: string };
  /** How many extra messages he sent. */
  extraSent: number;
}

export interface BobRoom {
  roomId: string;
  name: string;
  /** The room's index, for stable transaction ids. */
  index: number;
}
