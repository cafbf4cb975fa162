import { afterEach, describe, expect, it, vi } from "vitest";
import { yieldToEventLoop } from "../../../src/dehydration/drain/yield.js";

describe("yieldToEventLoop", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("yields with setTimeout(0) in a page, so rendering runs between slices", async () => {
    vi.stubGlobal("document", {});
    const timeout = vi.spyOn(globalThis, "setTimeout");
    const immediate = vi.spyOn(globalThis, "setImmediate");
    await yieldToEventLoop();
    expect(timeout).toHaveBeenCalledWith(expect.any(Function), 0);
    expect(immediate).not.toHaveBeenCalled();
  });

  it("yields with setImmediate where nothing paints (Node, Electron's main process)", async () => {
    const timeout = vi.spyOn(globalThis, "setTimeout");
    const immediate = vi.spyOn(globalThis, "setImmediate");
    await yieldToEventLoop();
    expect(immediate).toHaveBeenCalledTimes(1);
    expect(timeout).not.toHaveBeenCalled();
  });

  it("lets a pending macrotask run before it resumes", async () => {
    const order: string[] = [];
    setImmediate(() => order.push("other task"));
    await yieldToEventLoop();
    order.push("resumed");
    expect(order).toEqual(["other task", "resumed"]);
  });
});
