/**
 * Which device is each user's dehydrated device (MSC3814: at most one per user), its opaque
 * `device_data`, and the scripted pagination faults of `…/events`.
 *
 * The device itself — its row, keys and to-device inbox — lives in the account, key and to-device
 * stores like any other device; this store only remembers which one it is, as Synapse's
 * `dehydrated_devices` table does. `deleteDevice` (device-lifecycle.ts) calls `forget`, so deleting
 * the device any way (DELETE, replacement, `/devices`, logout) drops the record too.
 */

export interface DehydratedDeviceRecord {
  deviceId: string;
  /** `device_data` exactly as uploaded; never interpreted by the server. */
  deviceData: unknown;
}

/**
 * A misbehaving `…/events` for client tests (the drain must end with "truncated" instead
 * of looping). Both variants (GET and POST) are affected; errors (403, 400) still come first.
 * - `repeat-cursor`: answers the page after the cursor it was given, with that same cursor as
 *   `next_batch` (the start token when none was given), forever.
 * - `never-ends`: answers `eventsPerPage` filler events (default 0) and a new `next_batch` every time.
 */
export type DehydratedEventsFaultKind = "repeat-cursor" | "never-ends";

export interface DehydratedEventsFaultSpec {
  kind: DehydratedEventsFaultKind;
  /** Only this user's requests misbehave; default everyone. */
  userId?: string;
  /** Correct pages served before the fault starts. Default 0. */
  afterPages?: number;
  /** Faulty pages to serve before answering correctly again. Default: until cleared. */
  pages?: number;
  /** `never-ends` only: filler events per page (type `org.matrix.mock.filler`). Default 0. */
  eventsPerPage?: number;
}

export interface DehydratedEventsFault extends Required<Omit<DehydratedEventsFaultSpec, "userId" | "pages">> {
  userId: string | null;
  /** Faulty pages still to serve; `null` = unlimited. */
  pagesLeft: number | null;
  /** Correct pages still to serve before the fault starts. */
  correctPagesLeft: number;
  /** Faulty pages served so far. */
  served: number;
}

export class DehydratedDeviceStore {
  readonly #byUser = new Map<string, DehydratedDeviceRecord>();
  #fault: DehydratedEventsFault | undefined;

  get(userId: string): DehydratedDeviceRecord | undefined {
    const record = this.#byUser.get(userId);
    return record && { deviceId: record.deviceId, deviceData: structuredClone(record.deviceData) };
  }

  /** Makes `deviceId` the user's dehydrated device; returns the record it replaced, if any. */
  set(userId: string, record: DehydratedDeviceRecord): DehydratedDeviceRecord | undefined {
    const previous = this.#byUser.get(userId);
    this.#byUser.set(userId, { deviceId: record.deviceId, deviceData: structuredClone(record.deviceData) });
    return previous;
  }

  /** Drops the record if `deviceId` is the user's dehydrated device; returns whether it was. */
  forget(userId: string, deviceId: string): boolean {
    if (this.#byUser.get(userId)?.deviceId !== deviceId) return false;
    return this.#byUser.delete(userId);
  }

  // --- scripted faults -----------------------------------------------------------------------

  /** Replaces the fault (one at a time). Throws `RangeError` for a bad spec. */
  setEventsFault(spec: DehydratedEventsFaultSpec): DehydratedEventsFault {
    const afterPages = spec.afterPages ?? 0;
    const eventsPerPage = spec.eventsPerPage ?? 0;
    if (spec.kind !== "repeat-cursor" && spec.kind !== "never-ends") {
      throw new RangeError(`unknown fault kind ${JSON.stringify(spec.kind)}`);
    }
    for (const [name, value] of [
      ["afterPages", afterPages],
      ["eventsPerPage", eventsPerPage],
      ["pages", spec.pages ?? 1],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0)
        throw new RangeError(`${name} must be a non-negative integer`);
    }
    if (spec.pages === 0) throw new RangeError("pages must be positive");
    if (eventsPerPage > 0 && spec.kind !== "never-ends") {
      throw new RangeError("eventsPerPage applies to never-ends only");
    }
    this.#fault = {
      kind: spec.kind,
      userId: spec.userId ?? null,
      afterPages,
      eventsPerPage,
      pagesLeft: spec.pages ?? null,
      correctPagesLeft: afterPages,
      served: 0,
    };
    return this.eventsFault()!;
  }

  eventsFault(): DehydratedEventsFault | undefined {
    return this.#fault && { ...this.#fault };
  }

  clearEventsFault(): void {
    this.#fault = undefined;
  }

  /**
   * Called once per `…/events` page about to be served: the fault to apply to it, if any. Counts
   * the page against `afterPages` / `pages`; a fault whose pages are used up is removed.
   */
  takeEventsFault(userId: string): DehydratedEventsFault | undefined {
    const fault = this.#fault;
    if (!fault || (fault.userId !== null && fault.userId !== userId)) return undefined;
    if (fault.correctPagesLeft > 0) {
      fault.correctPagesLeft--;
      return undefined;
    }
    fault.served++;
    if (fault.pagesLeft !== null && --fault.pagesLeft === 0) this.#fault = undefined;
    return { ...fault };
  }
}
