/**
 * Room and event ids in the shapes real servers use: `!<18 letters>:<server>` for rooms (Synapse's
 * `RoomID`), and `$<43 url-safe base64 characters>` for events (the reference-hash form of room
 * versions 4 and later — the mock hashes nothing; the ids are random and only need to be unique).
 */
const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const URL_SAFE = `${LETTERS}0123456789-_`;

function randomString(alphabet: string, length: number): string {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function newRoomId(serverName: string): string {
  return `!${randomString(LETTERS, 18)}:${serverName}`;
}

export function newEventId(): string {
  return `$${randomString(URL_SAFE, 43)}`;
}

/** Synapse's media ids: 24 letters. */
export function newMediaId(): string {
  return randomString(LETTERS, 24);
}
