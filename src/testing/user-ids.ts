/**
 * User-id rules Synapse applies at registration (`RegistrationHandler.check_username`): allowed
 * characters, no leading underscore, no all-digit localparts (reserved for guests), and at most
 * 255 characters for the whole id (spec, "User Identifiers").
 */
export const MAX_USER_ID_LENGTH = 255;

export function localpartProblem(localpart: string, serverName: string): string | undefined {
  if (/[^a-z0-9=_\-./+]/.test(localpart)) return "User ID can only contain characters a-z, 0-9, or '=_-./+'";
  if (localpart === "") return "User ID cannot be empty";
  if (localpart.startsWith("_")) return "User ID may not begin with _";
  if (`@${localpart}:${serverName}`.length > MAX_USER_ID_LENGTH) {
    return `User ID may not be longer than ${MAX_USER_ID_LENGTH} characters`;
  }
  if (/^[0-9]+$/.test(localpart)) return "Numeric user IDs are reserved for guest users.";
  return undefined;
}

/**
 * A user id's server name (`@alice:example.org` → `example.org`), or `undefined` for a malformed id.
 * Synapse parses ids with `UserID.from_string`: an `@`, a localpart, one `:`, a server name.
 */
const USER_ID = /^@[^:\s]*:([^\s/]+)$/;

export function serverNameOf(userId: string): string | undefined {
  return USER_ID.exec(userId)?.[1];
}
