import type { Profile } from "../profiles.js";
import type { MockResponse, Route, RouteContext } from "../route.js";
import type { ServerState } from "../state/server-state.js";
import { clientRoute } from "./client-route.js";

/**
 * `GET /pushrules/` with the spec's predefined rules ("Push Notifications" → "Predefined Rules"),
 * the subset Synapse ships enabled by default. matrix-js-sdk will not finish starting without this
 * answer (it retries it forever). Rules cannot be changed in the mock.
 */

type Ctx = RouteContext<ServerState, Profile>;

const notify = (highlight: boolean, sound?: string) => [
  "notify",
  ...(sound ? [{ set_tweak: "sound", value: sound }] : []),
  ...(highlight ? [{ set_tweak: "highlight" }] : [{ set_tweak: "highlight", value: false }]),
];

const eventMatch = (key: string, pattern: string) => ({ kind: "event_match", key, pattern });

export function defaultPushRules(userId: string): Record<string, unknown> {
  const localpart = /^@([^:]*):/.exec(userId)?.[1] ?? userId;
  const rule = (rule_id: string, conditions: unknown[], actions: unknown[], enabled = true) => ({
    rule_id,
    default: true,
    enabled,
    conditions,
    actions,
  });
  return {
    global: {
      override: [
        rule(".m.rule.master", [], [], false),
        rule(".m.rule.suppress_notices", [eventMatch("content.msgtype", "m.notice")], []),
        rule(
          ".m.rule.invite_for_me",
          [
            eventMatch("type", "m.room.member"),
            eventMatch("content.membership", "invite"),
            eventMatch("state_key", userId),
          ],
          notify(false, "default"),
        ),
        rule(".m.rule.member_event", [eventMatch("type", "m.room.member")], []),
        rule(
          ".m.rule.is_user_mention",
          [{ kind: "event_property_contains", key: "content.m\\.mentions.user_ids", value: userId }],
          notify(true, "default"),
        ),
        rule(
          ".m.rule.is_room_mention",
          [
            { kind: "event_property_is", key: "content.m\\.mentions.room", value: true },
            { kind: "sender_notification_permission", key: "room" },
          ],
          notify(true),
        ),
        rule(
          ".m.rule.tombstone",
          [eventMatch("type", "m.room.tombstone"), eventMatch("state_key", "")],
          notify(true),
        ),
        rule(".m.rule.reaction", [eventMatch("type", "m.reaction")], []),
        rule(
          ".m.rule.room.server_acl",
          [eventMatch("type", "m.room.server_acl"), eventMatch("state_key", "")],
          [],
        ),
      ],
      content: [
        {
          rule_id: ".m.rule.contains_user_name",
          default: true,
          enabled: true,
          pattern: localpart,
          actions: notify(true, "default"),
        },
      ],
      room: [],
      sender: [],
      underride: [
        rule(".m.rule.call", [eventMatch("type", "m.call.invite")], notify(false, "ring")),
        rule(
          ".m.rule.encrypted_room_one_to_one",
          [{ kind: "room_member_count", is: "2" }, eventMatch("type", "m.room.encrypted")],
          notify(false, "default"),
        ),
        rule(
          ".m.rule.room_one_to_one",
          [{ kind: "room_member_count", is: "2" }, eventMatch("type", "m.room.message")],
          notify(false, "default"),
        ),
        rule(".m.rule.message", [eventMatch("type", "m.room.message")], notify(false)),
        rule(".m.rule.encrypted", [eventMatch("type", "m.room.encrypted")], notify(false)),
      ],
    },
  };
}

function getPushRules(ctx: Ctx): MockResponse {
  return { status: 200, body: defaultPushRules(ctx.caller().userId) };
}

function getGlobalPushRules(ctx: Ctx): MockResponse {
  return { status: 200, body: defaultPushRules(ctx.caller().userId).global };
}

export const pushRuleRoutes: Route<ServerState, Profile>[] = [
  clientRoute("GET", "pushrules/", getPushRules),
  clientRoute("GET", "pushrules", getPushRules),
  clientRoute("GET", "pushrules/global/", getGlobalPushRules),
];
