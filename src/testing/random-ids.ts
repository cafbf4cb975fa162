/**
 * Identifiers the mock hands out. Access tokens and session ids come from the platform CSPRNG
 * (`crypto.getRandomValues`, present in browsers and Node) so they cannot be guessed across users;
 * device ids look like Synapse's: ten upper-case letters.
 */
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

function randomString(alphabet: string, length: number): string {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  // 256 % 62 bias is irrelevant for a mock's tokens; uniqueness is what matters.
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

export function newDeviceId(): string {
  return randomString(UPPER, 10);
}

export function newSessionId(): string {
  return randomString(ALPHANUMERIC, 24);
}
