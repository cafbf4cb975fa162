import { describe, expect, it } from "vitest";
import { TypedEmitter } from "../../src/events/emitter.js";
import type { Logger } from "../../src/logger.js";

function recordingLogger(): { logger: Logger; errors: unknown[][] } {
  const errors: unknown[][] = [];
  const ignore = () => {};
  return { logger: { debug: ignore, info: ignore, warn: ignore, error: (...a) => errors.push(a) }, errors };
}

describe("TypedEmitter", () => {
  it("delivers a payload to every listener until it is removed", () => {
    const emitter = new TypedEmitter<{ ping: number }>();
    const seen: number[] = [];
    const off = emitter.on("ping", (n) => seen.push(n));
    emitter.once("ping", (n) => seen.push(n * 10));

    emitter.emit("ping", 1);
    off();
    emitter.emit("ping", 2);

    expect(seen).toEqual([1, 10]);
    expect(emitter.listenerCount("ping")).toBe(0);
  });

  it("keeps calling the other listeners when one throws, and logs a summary without the error's data", () => {
    const { logger, errors } = recordingLogger();
    const emitter = new TypedEmitter<{ ping: number }>(logger);
    const thrown = Object.assign(new Error("listener broke"), {
      errcode: "M_FORBIDDEN",
      data: { access_token: "syt_secret_token" },
    });
    const seen: number[] = [];
    emitter.on("ping", () => {
      throw thrown;
    });
    emitter.on("ping", (n) => seen.push(n));

    emitter.emit("ping", 7);

    expect(seen).toEqual([7]);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe('listener for "ping" threw');
    expect(errors[0]![1]).toEqual({
      name: "Error",
      code: undefined,
      status: undefined,
      errcode: "M_FORBIDDEN",
      message: "listener broke",
    });
    expect(errors[0]).not.toContain(thrown);
    expect(JSON.stringify(errors)).not.toContain("syt_secret_token");
  });

  it("logs a thrown non-error as its string", () => {
    const { logger, errors } = recordingLogger();
    const emitter = new TypedEmitter<{ ping: number }>(logger);
    emitter.on("ping", () => {
      throw "plain string";
    });

    emitter.emit("ping", 1);

    expect(errors).toEqual([['listener for "ping" threw', { error: "plain string" }]]);
  });
});
