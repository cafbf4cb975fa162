/**
 * Per-device to-device inboxes (Client-Server spec, "Send-to-Device messaging").
 *
 * Each device has its own queue ordered by a server-wide stream id, like Synapse's `device_inbox`
 * table: a message stays until the device acknowledges a position at or after it (classic `/sync`
 * `since`, sliding sync's `to_device.since` — per device, not per connection) or the device is
 * deleted. Reading a page finds its start by binary search and copies only the page, and
 * acknowledging advances a head index, so the cost of a read does not grow with the queue behind
 * it; `workDone` counts the entries touched so tests can assert that.
 */

import { type Clock, systemClock } from "../../time/clock.js";
import { HTTP_TRANSACTION_TTL_MS, TransactionCache } from "./transaction-cache.js";

/** A to-device event as a recipient receives it. */
export interface ToDeviceEvent {
  type: string;
  sender: string;
  content: Record<string, unknown>;
}

export interface QueuedToDeviceEvent {
  streamId: number;
  event: ToDeviceEvent;
}

export interface ToDevicePage {
  events: QueuedToDeviceEvent[];
  /** The stream id of the last event in the page, or `after` when the page is empty. */
  nextAfter: number;
  /** Whether more events follow the page. */
  hasMore: boolean;
}

/** Fired after a message lands in an inbox, so long-polls for that device can return at once. */
export interface ToDeviceArrival {
  userId: string;
  deviceId: string;
  streamId: number;
  /** The message as sent; listeners must not change it. */
  event: ToDeviceEvent;
}

export type ToDeviceListener = (arrival: ToDeviceArrival) => void;

class DeviceQueue {
  entries: QueuedToDeviceEvent[] = [];
  /** Entries before `head` are acknowledged; they are sliced off once they are half the array. */
  head = 0;

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Index of the first live entry with `streamId > after`. */
  firstAfter(after: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.streamId <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  compact(): void {
    if (this.head > 32 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

export class ToDeviceStore {
  #queues = new Map<string, Map<string, DeviceQueue>>();
  /** Sends already done, by device and `type \0 txnId`, for idempotency; forgotten after 30 minutes. */
  readonly #transactions: TransactionCache<true>;
  #streamId = 0;
  #workDone = 0;
  #listeners = new Set<ToDeviceListener>();

  /** `clock` times out transaction ids; the server passes its own. */
  constructor(clock: Clock = systemClock) {
    this.#transactions = new TransactionCache(clock, HTTP_TRANSACTION_TTL_MS);
  }

  /** The newest stream id handed out (0 before the first message). */
  get position(): number {
    return this.#streamId;
  }

  /** Queue entries touched by reads and acknowledgements so far. */
  get workDone(): number {
    return this.#workDone;
  }

  onChange(listener: ToDeviceListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Appends an event to one device's inbox and returns its stream id. */
  enqueue(userId: string, deviceId: string, event: ToDeviceEvent): number {
    const streamId = ++this.#streamId;
    this.#queue(userId, deviceId, true).entries.push({ streamId, event: structuredClone(event) });
    this.#emit({ userId, deviceId, streamId, event });
    return streamId;
  }

  /**
   * Up to `limit` events with a stream id after `after`, oldest first. Reading never removes
   * anything: the client acknowledges separately, so a lost response loses no message.
   */
  page(userId: string, deviceId: string, after: number, limit: number): ToDevicePage {
    const queue = this.#queue(userId, deviceId, false);
    if (!queue) return { events: [], nextAfter: after, hasMore: false };
    const start = queue.firstAfter(after);
    const end = Math.min(queue.entries.length, start + Math.max(0, limit));
    const events: QueuedToDeviceEvent[] = [];
    for (let i = start; i < end; i++) {
      const entry = queue.entries[i]!;
      this.#workDone++;
      events.push({ streamId: entry.streamId, event: structuredClone(entry.event) });
    }
    const last = events.at(-1);
    return { events, nextAfter: last ? last.streamId : after, hasMore: end < queue.entries.length };
  }

  /**
   * Deletes every event with a stream id up to and including `upTo` from one device's inbox.
   * Acknowledgement is per device (MSC3885 / Synapse): any connection that acknowledges for the
   * device removes the messages for all of them. Returns how many were removed.
   */
  acknowledge(userId: string, deviceId: string, upTo: number): number {
    const queue = this.#queue(userId, deviceId, false);
    if (!queue) return 0;
    const end = queue.firstAfter(upTo);
    const removed = end - queue.head;
    this.#workDone += removed;
    queue.head = end;
    queue.compact();
    if (queue.size === 0) this.#dropQueue(userId, deviceId);
    return removed;
  }

  /** How many events wait in a device's inbox. */
  pendingCount(userId: string, deviceId: string): number {
    return this.#queue(userId, deviceId, false)?.size ?? 0;
  }

  /**
   * Every event waiting for a device, oldest first, without acknowledging any: a shortcut for
   * tests (`MockControl.toDeviceInbox` pages with a cursor); prefer `page` for anything large.
   */
  inbox(userId: string, deviceId: string): QueuedToDeviceEvent[] {
    return this.page(userId, deviceId, 0, Number.MAX_SAFE_INTEGER).events;
  }

  /**
   * Whether this device made the transaction `transactionKey` in the last 30 minutes
   * (`sendToDevice` idempotency; Client-Server spec, "Transaction identifiers": scoped to the
   * device since v1.7 / MSC3970). A repeated send is answered 200 without delivering again. Synapse
   * remembers it only in its HTTP transaction cache, so a replay after that is a new send.
   */
  hasTransaction(userId: string, deviceId: string, transactionKey: string): boolean {
    return this.#transactions.has(userId, deviceId, transactionKey);
  }

  /** Remembers a transaction once it succeeded; a failed send is not remembered, so a retry runs. */
  recordTransaction(userId: string, deviceId: string, transactionKey: string): void {
    this.#transactions.record(userId, deviceId, transactionKey, true);
  }

  /** How many transaction ids are remembered now, over all devices. */
  get transactionCount(): number {
    return this.#transactions.size;
  }

  /**
   * Drops a deleted device's inbox (Synapse deletes the inbox with the device). Its transaction ids
   * stay until they time out, as in Synapse's cache, which is keyed by device id and never told.
   */
  deleteDevice(userId: string, deviceId: string): void {
    this.#dropQueue(userId, deviceId);
  }

  #queue(userId: string, deviceId: string, create: true): DeviceQueue;
  #queue(userId: string, deviceId: string, create: false): DeviceQueue | undefined;
  #queue(userId: string, deviceId: string, create: boolean): DeviceQueue | undefined {
    let devices = this.#queues.get(userId);
    if (!devices) {
      if (!create) return undefined;
      devices = new Map();
      this.#queues.set(userId, devices);
    }
    let queue = devices.get(deviceId);
    if (!queue && create) {
      queue = new DeviceQueue();
      devices.set(deviceId, queue);
    }
    return queue;
  }

  #dropQueue(userId: string, deviceId: string): void {
    const devices = this.#queues.get(userId);
    if (devices?.delete(deviceId) && devices.size === 0) this.#queues.delete(userId);
  }

  #emit(arrival: ToDeviceArrival): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(arrival);
      } catch {
        // A failing listener (a closed long-poll) must not undo or break the delivery.
      }
    }
  }
}
