import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { z } from "zod";
import { createOlmMachine } from "../../../src/crypto/olm-machine.js";
import { outgoingRequestKind } from "../../../src/crypto/request-endpoints.js";
import { sendOutgoingRequest } from "../../../src/crypto/send-outgoing-request.js";
import { withUserInteractiveAuth } from "../../../src/crypto/user-interactive-auth.js";
import { createMatrixHttp, type MatrixHttpClient } from "../../../src/http/matrix-http.js";
import { whoamiResponseSchema } from "../../../src/http/schemas/whoami.js";
// The package's `./testing` entry as an app's browser test would import it: it must load without
// `node:http` (the socket server is imported lazily, Node only).
import { createMockHomeserver, type MockHomeserver } from "../../../src/testing/index.js";
import { exposeScenarios } from "./scenario-protocol.js";

const registered = z.looseObject({ user_id: z.string(), access_token: z.string(), device_id: z.string() });
const keysQuery = z.looseObject({
  device_keys: z.record(
    z.string(),
    z.record(z.string(), z.looseObject({ keys: z.record(z.string(), z.string()) })),
  ),
});

let server: MockHomeserver | undefined;

function liveServer(): MockHomeserver {
  server ??= createMockHomeserver({ serverName: "localhost" });
  return server;
}

/** The SDK's transport over the mock's in-process `fetch`: no socket, nothing leaves the page. */
function transportFor(hs: MockHomeserver): MatrixHttpClient {
  return createMatrixHttp({ baseUrl: hs.baseUrl, fetch: hs.fetch });
}

/** Registers through the server's UIA (`m.login.dummy`); the token stays in the page. */
async function register(http: MatrixHttpClient, username: string, password: string) {
  const response = await withUserInteractiveAuth(
    (auth) =>
      http.request({
        method: "POST",
        path: "/_matrix/client/v3/register",
        body: { username, password, ...(auth ? { auth } : {}) },
        schema: registered,
        unauthenticated: true,
      }),
    async () => ({ type: "m.login.dummy" }),
  );
  http.setAccessToken(response.access_token);
  return { userId: response.user_id, deviceId: response.device_id };
}

/** One pass of the machine's outgoing requests (here: the initial `keys/upload`). */
async function flushOutgoing(machine: OlmMachine, http: MatrixHttpClient): Promise<string[]> {
  const kinds: string[] = [];
  for (const request of await machine.outgoingRequests()) {
    await sendOutgoingRequest(machine, http, request);
    kinds.push(outgoingRequestKind(request));
  }
  return kinds;
}

const scenarios = {
  /**
   * A new user end to end in the page: register, whoami, a fresh crypto-wasm machine uploads its
   * device keys, and `keys/query` returns them. Returns what the Node side needs to compare.
   */
  async registerAndUploadDeviceKeys(username: string, password: string) {
    const hs = liveServer();
    const http = transportFor(hs);
    const account = await register(http, username, password);
    const whoami = await http.request({
      method: "GET",
      path: "/_matrix/client/v3/account/whoami",
      schema: whoamiResponseSchema,
    });
    const machine = await createOlmMachine({ userId: account.userId, deviceId: account.deviceId });
    try {
      const sent = await flushOutgoing(machine, http);
      const query = await http.request({
        method: "POST",
        path: "/_matrix/client/v3/keys/query",
        body: { device_keys: { [account.userId]: [] } },
        schema: keysQuery,
      });
      const published = query.device_keys[account.userId]?.[account.deviceId]?.keys ?? {};
      return {
        account,
        whoami: { userId: whoami.user_id, deviceId: whoami.device_id },
        sent,
        machineEd25519: machine.identityKeys.ed25519.toBase64(),
        publishedEd25519: published[`ed25519:${account.deviceId}`],
      };
    } finally {
      machine.close();
    }
  },

  /** Registering a taken name: the transport's typed error, with the server's errcode. */
  async registerTwice(username: string, password: string) {
    const hs = liveServer();
    await register(transportFor(hs), username, password);
    await register(transportFor(hs), username, password);
  },
};

export type MockHomeserverScenarios = typeof scenarios;
exposeScenarios(scenarios);
