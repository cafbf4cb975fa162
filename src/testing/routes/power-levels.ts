import type { RoomStore } from "../state/room-store.js";

/**
 * Power levels (Client-Server spec, `m.room.power_levels`; auth rules of room versions 1–11). With
 * no power-levels event the creator has 100 and everyone else 0; defaults below are the spec's.
 */

export type NamedLevel = "invite" | "kick" | "ban" | "redact";

const NAMED_DEFAULTS: Record<NamedLevel, number> = { invite: 0, kick: 50, ban: 50, redact: 50 };

function powerLevels(rooms: RoomStore, roomId: string): Record<string, unknown> | undefined {
  return rooms.stateEvent(roomId, "m.room.power_levels", "")?.content;
}

function integer(value: unknown, fallback: number): number {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
  return fallback;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

export function userPowerLevel(rooms: RoomStore, roomId: string, userId: string): number {
  const pl = powerLevels(rooms, roomId);
  if (!pl) {
    const create = rooms.stateEvent(roomId, "m.room.create", "");
    return create?.sender === userId ? 100 : 0;
  }
  const users = record(pl.users);
  return Object.hasOwn(users, userId) ? integer(users[userId], 0) : integer(pl.users_default, 0);
}

/** The level needed to send an event of `type` (a state event when `isState`). */
export function sendPowerLevel(rooms: RoomStore, roomId: string, type: string, isState: boolean): number {
  const pl = powerLevels(rooms, roomId);
  if (!pl) return 0;
  const events = record(pl.events);
  if (Object.hasOwn(events, type)) return integer(events[type], 0);
  return isState ? integer(pl.state_default, 50) : integer(pl.events_default, 0);
}

export function namedPowerLevel(rooms: RoomStore, roomId: string, name: NamedLevel): number {
  const pl = powerLevels(rooms, roomId);
  return integer(pl?.[name], NAMED_DEFAULTS[name]);
}

export type Preset = "private_chat" | "trusted_private_chat" | "public_chat";

/**
 * The power-levels content Synapse creates for a new room (`RoomCreationHandler`): the creator at
 * 100, the preset's override (`invite: 0` for private presets), invitees of a trusted private chat
 * at 100, then the request's `power_level_content_override` on top.
 */
export function initialPowerLevels(
  creator: string,
  preset: Preset,
  invitees: readonly string[],
  override: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const users: Record<string, number> = { [creator]: 100 };
  if (preset === "trusted_private_chat") for (const invitee of invitees) users[invitee] = 100;
  const content: Record<string, unknown> = {
    users,
    users_default: 0,
    events: {
      "m.room.name": 50,
      "m.room.power_levels": 100,
      "m.room.history_visibility": 100,
      "m.room.canonical_alias": 50,
      "m.room.avatar": 50,
      "m.room.tombstone": 100,
      "m.room.server_acl": 100,
      "m.room.encryption": 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 50,
    historical: 100,
  };
  if (preset === "public_chat") (content.events as Record<string, number>)["m.call.invite"] = 50;
  else content.invite = 0;
  return { ...content, ...(override ?? {}) };
}
