import type { StoredEvent } from "../state/room-store.js";
import type { RequiredState } from "./sliding-request.js";

/**
 * The `required_state` selection rules of simplified sliding sync (MSC4186). Events themselves are
 * rendered by `client-event.ts`, as classic `/sync` renders them.
 */

export interface Viewer {
  userId: string;
  deviceId: string;
}

/**
 * Which state events `required_state` selects (MSC4186): `*` as type or state key matches any,
 * `$ME` is the viewer's user id, and `["m.room.member", "$LAZY"]` selects the members who sent
 * something in `timeline` (plus the viewer). The mock does not implement the exclusion form that
 * follows `["*", "*"]`: with `["*", "*"]` every state event is sent.
 */
export function selectRequiredState(
  state: readonly StoredEvent[],
  requiredState: RequiredState,
  viewer: Viewer,
  timeline: readonly StoredEvent[],
): StoredEvent[] {
  if (requiredState.length === 0) return [];
  const lazyMembers = requiredState.some(([type, key]) => type === "m.room.member" && key === "$LAZY")
    ? new Set([viewer.userId, ...timeline.map((e) => e.sender)])
    : undefined;
  return state.filter((event) => {
    const key = event.stateKey ?? "";
    if (lazyMembers && event.type === "m.room.member" && lazyMembers.has(key)) return true;
    return requiredState.some(([type, stateKey]) => {
      if (type !== "*" && type !== event.type) return false;
      if (stateKey === "*") return true;
      if (stateKey === "$ME") return key === viewer.userId;
      return stateKey === key;
    });
  });
}
