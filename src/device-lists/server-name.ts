/**
 * The server name of a user id (`@localpart:server`, Client-Server spec "User Identifiers"): all
 * after the first colon, port included. `undefined` for anything that is not a user id.
 */
export function serverNameOf(userId: string): string | undefined {
  if (typeof userId !== "string" || !userId.startsWith("@")) return undefined;
  const colon = userId.indexOf(":");
  if (colon < 2 || colon === userId.length - 1) return undefined;
  return userId.slice(colon + 1);
}
