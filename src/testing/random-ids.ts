/**
 * Identifiers the mock hands out, in the shapes real servers use. Access tokens and session ids
 * come from the platform CSPRNG (`crypto.getRandomValues`, present in browsers and Node) so they
 * cannot be guessed across users; the other ids only need to be unique.
 */
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALPHANUMERIC = `${LETTERS}0123456789`;
const URL_SAFE = `${ALPHANUMERIC}-_`;
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

function randomString(alphabet: string, length: number): string {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  // The modulo bias is irrelevant for a mock's ids; uniqueness is what matters.
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function newAccessToken(): string {
  return `mock_${randomString(ALPHANUMERIC, 32)}`;
}

/** Prefixed differently from access tokens, so a test that mixes them up fails loudly. */
export function newRefreshToken(): string {
  return `mockr_${randomString(ALPHANUMERIC, 32)}`;
}

/** Synapse's device ids: ten upper-case letters. */
export function newDeviceId(): string {
  return randomString(UPPER, 10);
}

export function newSessionId(): string {
  return randomString(ALPHANUMERIC, 24);
}

/** Synapse's `RoomID`: `!<18 letters>:<server>`. */
export function newRoomId(serverName: string): string {
  return `!${randomString(LETTERS, 18)}:${serverName}`;
}

/**
 * `$<43 url-safe base64 characters>`: the reference-hash form of room versions 4 and later. The
 * mock hashes nothing; the id is random.
 */
export function newEventId(): string {
  return `$${randomString(URL_SAFE, 43)}`;
}

/** Synapse's media ids: 24 letters. */
export function newMediaId(): string {
  return randomString(LETTERS, 24);
}
