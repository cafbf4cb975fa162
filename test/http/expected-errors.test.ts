import { describe, expect, it } from "vitest";
import { orUndefinedOn } from "../../src/http/expected-errors.js";
import { accountDataResponseSchema } from "../../src/http/schemas/account-data.js";
import { json } from "./scripted-fetch.js";
import { rejection, setup } from "./support.js";

const getAccountData = {
  method: "GET",
  path: "/_matrix/client/v3/user/%40alice%3Ahs.example/account_data/m.secret_storage.default_key",
  schema: accountDataResponseSchema,
} as const;

describe("orUndefinedOn", () => {
  it("turns a listed errcode into undefined", async () => {
    const { http, server } = setup();
    server.push(json(404, { errcode: "M_NOT_FOUND" }));
    await expect(orUndefinedOn(http.request(getAccountData), ["M_NOT_FOUND"])).resolves.toBeUndefined();
  });

  it("passes a value through", async () => {
    const { http, server } = setup();
    server.push(json(200, { key: "K1" }));
    await expect(orUndefinedOn(http.request(getAccountData), ["M_NOT_FOUND"])).resolves.toEqual({
      key: "K1",
    });
  });

  it("still throws an errcode it was not told to expect", async () => {
    const { http, server } = setup();
    server.push(json(403, { errcode: "M_FORBIDDEN" }));
    const error = await rejection(orUndefinedOn(http.request(getAccountData), ["M_NOT_FOUND"]));
    expect(error).toMatchObject({ name: "MatrixApiError", errcode: "M_FORBIDDEN" });
  });
});
