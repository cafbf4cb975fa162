import { describe, expect, it } from "vitest";
import { isSdkError } from "../../src/errors/sdk-error.js";
import { encodePathSegment, matrixPath } from "../../src/http/path.js";

describe("matrixPath", () => {
  it("encodes a dehydrated device id containing / and + as one segment", () => {
    const deviceId = "aB3/x+Yz9";
    expect(
      matrixPath`/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/${deviceId}/events`,
    ).toBe("/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/aB3%2Fx%2BYz9/events");
  });

  it("encodes user ids and event types", () => {
    expect(
      matrixPath`/_matrix/client/v3/user/${"@alice:example.org"}/account_data/${"m.secret_storage.key.a b"}`,
    ).toBe("/_matrix/client/v3/user/%40alice%3Aexample.org/account_data/m.secret_storage.key.a%20b");
  });

  it("leaves the literal parts alone", () => {
    expect(matrixPath`/_matrix/client/v3/keys/claim`).toBe("/_matrix/client/v3/keys/claim");
  });

  it("survives URL parsing with the segment intact", () => {
    const url = new URL(`https://hs.example${matrixPath`/devices/${"a/../b"}`}`);
    expect(url.pathname).toBe("/devices/a%2F..%2Fb");
  });

  it.each(["", ".", ".."])("refuses the segment %j, which URL parsing would collapse", (segment) => {
    let caught: unknown;
    try {
      encodePathSegment(segment);
    } catch (err) {
      caught = err;
    }
    expect(isSdkError(caught) && caught.code).toBe("invalid_path_segment");
  });
});
