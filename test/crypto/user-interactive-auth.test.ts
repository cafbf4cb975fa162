import { describe, expect, it } from "vitest";
import {
  type AuthDict,
  type UiaChallenge,
  uiaChallengeFrom,
  withUserInteractiveAuth,
} from "../../src/crypto/user-interactive-auth.js";
import { isUserInteractiveAuthError } from "../../src/errors/user-interactive-auth-error.js";
import { apiError } from "./support/fake-matrix-http.js";

const path = "/_matrix/client/v3/keys/device_signing/upload";
const challenge = (extra: Record<string, unknown> = {}) =>
  apiError("POST", path, 401, {
    flows: [{ stages: ["m.login.password"] }, { stages: ["m.login.sso"] }],
    params: { "m.login.sso": {} },
    session: "S1",
    ...extra,
  });

/** A server that wants `stages` completed in order, tracking what arrived. */
function server(stages: string[]) {
  const received: (AuthDict | undefined)[] = [];
  const send = async (auth: AuthDict | undefined) => {
    received.push(auth);
    const done = received.filter((a) => a !== undefined).map((a) => a!.type as string);
    if (stages.every((s) => done.includes(s))) return "ok";
    throw challenge({ completed: done });
  };
  return { send, received };
}

describe("withUserInteractiveAuth", () => {
  it("returns at once when the server asks for no auth, without calling the callback", async () => {
    let asked = 0;
    const result = await withUserInteractiveAuth(
      async () => "done",
      async () => {
        asked++;
        return undefined;
      },
    );
    expect(result).toBe("done");
    expect(asked).toBe(0);
  });

  it("answers a 401 challenge with the callback's auth dict and the server's session", async () => {
    const { send, received } = server(["m.login.password"]);
    const seen: UiaChallenge[] = [];
    const result = await withUserInteractiveAuth(send, async (c) => {
      seen.push(c);
      return { type: "m.login.password", identifier: { type: "m.id.user", user: "alice" }, password: "pw" };
    });
    expect(result).toBe("ok");
    expect(received[0]).toBeUndefined();
    expect(received[1]).toEqual({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: "pw",
      session: "S1",
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toEqual({
      flows: [{ stages: ["m.login.password"] }, { stages: ["m.login.sso"] }],
      params: { "m.login.sso": {} },
      session: "S1",
      completed: [],
      errcode: undefined,
      error: undefined,
    });
  });

  it("keeps asking the callback stage after stage until the server is satisfied", async () => {
    const { send, received } = server(["m.login.dummy", "m.login.terms"]);
    const types = ["m.login.dummy", "m.login.terms"];
    const completedSeen: string[][] = [];
    await withUserInteractiveAuth(send, async (c) => {
      completedSeen.push(c.completed);
      return { type: types[completedSeen.length - 1] };
    });
    expect(received.map((a) => a?.type)).toEqual([undefined, "m.login.dummy", "m.login.terms"]);
    expect(completedSeen).toEqual([[], ["m.login.dummy"]]);
  });

  it("keeps a session the callback chose itself", async () => {
    const { send, received } = server(["m.login.dummy"]);
    await withUserInteractiveAuth(send, async () => ({ type: "m.login.dummy", session: "MINE" }));
    expect(received[1]!.session).toBe("MINE");
  });

  it("fails with a typed cancelled error when the callback gives up, and sends nothing more", async () => {
    const { send, received } = server(["m.login.password"]);
    const err = await withUserInteractiveAuth(send, async () => undefined).catch((e: unknown) => e);
    expect(isUserInteractiveAuthError(err)).toBe(true);
    expect(err).toMatchObject({ reason: "cancelled", code: "uia_cancelled" });
    expect((err as { details: { flows: unknown } }).details.flows).toEqual([
      { stages: ["m.login.password"] },
      { stages: ["m.login.sso"] },
    ]);
    expect(received).toHaveLength(1);
  });

  it("fails with a typed no_callback error when the server asks and the app gave no callback", async () => {
    const { send } = server(["m.login.password"]);
    await expect(withUserInteractiveAuth(send, undefined)).rejects.toMatchObject({
      name: "UserInteractiveAuthError",
      reason: "no_callback",
    });
  });

  it("wraps a throwing callback in a typed error with the cause", async () => {
    const { send } = server(["m.login.password"]);
    const boom = new Error("dialog closed");
    await expect(
      withUserInteractiveAuth(send, async () => {
        throw boom;
      }),
    ).rejects.toMatchObject({ reason: "callback_failed", cause: boom });
  });

  it("gives up with a typed error when the server keeps asking past the round limit", async () => {
    let sends = 0;
    const never = async () => {
      sends++;
      throw challenge({ errcode: "M_FORBIDDEN", error: "Invalid password" });
    };
    let attempt = 0;
    await expect(
      withUserInteractiveAuth(
        never,
        async () => ({ type: "m.login.password", password: `guess ${attempt++}` }),
        {
          maxRounds: 3,
        },
      ),
    ).rejects.toMatchObject({ reason: "too_many_rounds" });
    expect(sends).toBe(4);
  });

  it("stops when the server refused an attempt and the callback gives the same auth again", async () => {
    let sends = 0;
    const refuse = async (auth: unknown) => {
      sends++;
      throw auth === undefined
        ? challenge({ session: "s1" })
        : challenge({ session: "s1", errcode: "M_FORBIDDEN", error: "Invalid password" });
    };
    const error = await withUserInteractiveAuth(refuse, async () => ({
      type: "m.login.password",
      password: "wrong",
    })).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: "UserInteractiveAuthError",
      code: "uia_rejected",
      details: { errcode: "M_FORBIDDEN" },
    });
    expect(String((error as Error).message)).not.toContain("wrong");
    // The first send (no auth), the first attempt, and nothing more.
    expect(sends).toBe(2);
  });

  it("sends a changed auth dict again after a refusal (the user retyped the password)", async () => {
    const sent: unknown[] = [];
    const refuseOnce = async (auth: unknown) => {
      sent.push(auth);
      if (auth === undefined) throw challenge({ session: "s1" });
      if ((auth as { password?: string }).password === "wrong") {
        throw challenge({ session: "s1", errcode: "M_FORBIDDEN", error: "Invalid password" });
      }
      return "ok";
    };
    const answers = ["wrong", "right"];
    await expect(
      withUserInteractiveAuth(refuseOnce, async () => ({
        type: "m.login.password",
        password: answers.shift(),
      })),
    ).resolves.toBe("ok");
    expect(sent).toHaveLength(3);
  });

  it("never puts the auth dict (a password) into the error", async () => {
    const never = async () => {
      throw challenge();
    };
    const err = await withUserInteractiveAuth(
      never,
      async () => ({ type: "m.login.password", password: "hunter2" }),
      {
        maxRounds: 1,
      },
    ).catch((e: unknown) => e);
    expect(
      JSON.stringify({ m: (err as Error).message, d: (err as { details: unknown }).details }),
    ).not.toContain("hunter2");
  });

  it("lets errors that are not challenges through unchanged", async () => {
    const notUia = apiError("POST", path, 400, { errcode: "M_INVALID_PARAM", error: "bad key" });
    await expect(
      withUserInteractiveAuth(
        async () => {
          throw notUia;
        },
        async () => ({ type: "m.login.dummy" }),
      ),
    ).rejects.toBe(notUia);
  });
});

describe("uiaChallengeFrom", () => {
  it("reads a 401 with flows", () => {
    expect(uiaChallengeFrom(challenge())?.session).toBe("S1");
  });
  it("ignores a 401 M_UNKNOWN_TOKEN, which is a logout, not a challenge", () => {
    expect(uiaChallengeFrom(apiError("GET", "/x", 401, { errcode: "M_UNKNOWN_TOKEN" }))).toBeUndefined();
  });
  it("ignores a 403 even with flows", () => {
    expect(uiaChallengeFrom(apiError("GET", "/x", 403, { flows: [] }))).toBeUndefined();
  });
  it("ignores flows of the wrong shape", () => {
    expect(
      uiaChallengeFrom(apiError("GET", "/x", 401, { flows: [{ stages: "m.login.dummy" }] })),
    ).toBeUndefined();
  });
  it("ignores things that are not API errors", () => {
    expect(uiaChallengeFrom({ status: 401, data: { flows: [] } })).toBeUndefined();
    expect(uiaChallengeFrom(undefined)).toBeUndefined();
  });
});
