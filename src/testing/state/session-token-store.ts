import { newRefreshToken } from "../random-ids.js";

/**
 * Access-token expiry and refresh tokens (Client-Server spec v1.3+, "Refreshing access tokens";
 * "Soft logout"), kept as Synapse keeps them (`access_tokens.valid_until_ms`, the
 * `refresh_tokens` table and `AuthHandler.refresh_token`, element-hq/synapse v1.157):
 *
 * - only an access token issued together with a refresh token expires, `accessTokenMs` after it
 *   was issued (Synapse's `refreshable_access_token_lifetime`); once expired it is refused with
 *   `soft_logout: true`. With no lifetime set it never expires on its own;
 * - refreshing R issues R' and a new access token A'. R stays usable until A' is first used — so a
 *   client whose refresh response was lost can retry — and is refused 403 `M_FORBIDDEN` after
 *   that. Refreshing R again replaces R' (revoking A'). Refreshing R also deletes R's own
 *   predecessor with its access token (Synapse keeps the last two links only), so once R' is
 *   refreshed, R is unknown;
 * - a refresh token past `refreshTokenMs` is refused 403 `M_FORBIDDEN`;
 * - deleting a device deletes its refresh tokens.
 *
 * The store never touches `AccountStore`: it returns the access tokens a refresh revokes, and the
 * caller (`session-lifecycle.ts`) removes them there.
 */

export interface TokenLifetimes {
  /** Lifetime of access tokens issued with a refresh token; `null`: they do not expire. */
  accessTokenMs: number | null;
  /** Lifetime of refresh tokens; `null`: they last until used up. */
  refreshTokenMs: number | null;
}

export type AccessTokenStatus = { kind: "valid" } | { kind: "expired"; softLogout: boolean };

export type RefreshRefusal = "unknown" | "superseded" | "expired";

export type RefreshResult =
  | {
      ok: true;
      userId: string;
      deviceId: string;
      accessToken: string;
      refreshToken: string;
      expiresInMs: number | undefined;
      /** Access tokens that stopped existing: give them to `AccountStore.revokeAccessToken`. */
      revoked: string[];
    }
  | { ok: false; reason: RefreshRefusal };

interface RefreshRecord {
  readonly token: string;
  readonly userId: string;
  readonly deviceId: string;
  /** The access token issued together with this refresh token. */
  readonly accessToken: string;
  readonly expiresAt: number | null;
  next: RefreshRecord | undefined;
  previous: RefreshRecord | undefined;
}

interface AccessRecord {
  validUntil: number | null;
  used: boolean;
  /** Set by the control API: refused from now on, whatever the clock says. */
  forced: { softLogout: boolean } | undefined;
}

const deviceKeyOf = (userId: string, deviceId: string) => `${userId}\u0000${deviceId}`;

function checkLifetime(name: string, value: number | null | undefined): void {
  if (value === undefined || value === null) return;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer number of milliseconds, or null`);
  }
}

export class SessionTokenStore {
  #lifetimes: TokenLifetimes = { accessTokenMs: null, refreshTokenMs: null };
  readonly #refresh = new Map<string, RefreshRecord>();
  /** Only tokens that can expire have a record; every other token is simply valid. */
  readonly #access = new Map<string, AccessRecord>();
  readonly #byDevice = new Map<string, { refresh: Set<RefreshRecord>; access: Set<string> }>();

  lifetimes(): TokenLifetimes {
    return { ...this.#lifetimes };
  }

  /** Applies to tokens issued from now on. Throws `RangeError` for a non-positive or fractional value. */
  setLifetimes(changes: Partial<TokenLifetimes>): TokenLifetimes {
    checkLifetime("accessTokenMs", changes.accessTokenMs);
    checkLifetime("refreshTokenMs", changes.refreshTokenMs);
    this.#lifetimes = { ...this.#lifetimes, ...changes };
    return this.lifetimes();
  }

  /** Starts a refreshable session for an access token just issued by login or registration. */
  startSession(
    userId: string,
    deviceId: string,
    accessToken: string,
    now: number,
  ): { refreshToken: string; expiresInMs: number | undefined } {
    const record = this.#issue(userId, deviceId, accessToken, now);
    return { refreshToken: record.token, expiresInMs: this.#lifetimes.accessTokenMs ?? undefined };
  }

  status(accessToken: string, now: number): AccessTokenStatus {
    const record = this.#access.get(accessToken);
    if (record?.forced) return { kind: "expired", softLogout: record.forced.softLogout };
    // Synapse: `valid_until_ms < now` is expired, and an expired token is always a soft logout.
    if (record?.validUntil != null && record.validUntil < now) return { kind: "expired", softLogout: true };
    return { kind: "valid" };
  }

  /** The first use of a refreshed access token retires the refresh token it was traded for. */
  markUsed(accessToken: string): void {
    const record = this.#access.get(accessToken);
    if (record) record.used = true;
  }

  /** Makes the server refuse `accessToken` from now on (a control call, not a server rule). */
  forceExpiry(userId: string, deviceId: string, accessToken: string, softLogout: boolean): void {
    const record = this.#access.get(accessToken) ?? this.#addAccess(userId, deviceId, accessToken, null);
    record.forced = { softLogout };
  }

  /** Trades a refresh token for a new pair; `mint` issues the new access token for the device. */
  refresh(
    refreshToken: string,
    now: number,
    mint: (userId: string, deviceId: string) => string,
  ): RefreshResult {
    const record = this.#refresh.get(refreshToken);
    if (!record) return { ok: false, reason: "unknown" };
    const next = record.next;
    if (next && this.#access.get(next.accessToken)?.used === true) return { ok: false, reason: "superseded" };
    if (record.expiresAt !== null && record.expiresAt < now) return { ok: false, reason: "expired" };

    const accessToken = mint(record.userId, record.deviceId);
    const successor = this.#issue(record.userId, record.deviceId, accessToken, now);
    const revoked: string[] = [];
    if (next) revoked.push(this.#delete(next));
    if (record.previous) revoked.push(this.#delete(record.previous));
    record.next = successor;
    record.previous = undefined;
    successor.previous = record;
    return {
      ok: true,
      userId: record.userId,
      deviceId: record.deviceId,
      accessToken,
      refreshToken: successor.token,
      expiresInMs: this.#lifetimes.accessTokenMs ?? undefined,
      revoked,
    };
  }

  /** Forgets every refresh token and expiry of a deleted device. */
  forgetDevice(userId: string, deviceId: string): void {
    const key = deviceKeyOf(userId, deviceId);
    const bucket = this.#byDevice.get(key);
    if (!bucket) return;
    for (const record of bucket.refresh) this.#refresh.delete(record.token);
    for (const token of bucket.access) this.#access.delete(token);
    this.#byDevice.delete(key);
  }

  #issue(userId: string, deviceId: string, accessToken: string, now: number): RefreshRecord {
    const { accessTokenMs, refreshTokenMs } = this.#lifetimes;
    this.#addAccess(userId, deviceId, accessToken, accessTokenMs === null ? null : now + accessTokenMs);
    let token = newRefreshToken();
    while (this.#refresh.has(token)) token = newRefreshToken();
    const record: RefreshRecord = {
      token,
      userId,
      deviceId,
      accessToken,
      expiresAt: refreshTokenMs === null ? null : now + refreshTokenMs,
      next: undefined,
      previous: undefined,
    };
    this.#refresh.set(token, record);
    this.#bucket(deviceKeyOf(userId, deviceId)).refresh.add(record);
    return record;
  }

  #addAccess(userId: string, deviceId: string, accessToken: string, validUntil: number | null): AccessRecord {
    const record: AccessRecord = { validUntil, used: false, forced: undefined };
    this.#access.set(accessToken, record);
    this.#bucket(deviceKeyOf(userId, deviceId)).access.add(accessToken);
    return record;
  }

  /** Deletes a refresh token and, as Synapse's foreign key cascades, its access token. */
  #delete(record: RefreshRecord): string {
    this.#refresh.delete(record.token);
    this.#access.delete(record.accessToken);
    const bucket = this.#byDevice.get(deviceKeyOf(record.userId, record.deviceId));
    bucket?.refresh.delete(record);
    bucket?.access.delete(record.accessToken);
    return record.accessToken;
  }

  #bucket(key: string): { refresh: Set<RefreshRecord>; access: Set<string> } {
    let bucket = this.#byDevice.get(key);
    if (!bucket) {
      bucket = { refresh: new Set(), access: new Set() };
      this.#byDevice.set(key, bucket);
    }
    return bucket;
  }
}
