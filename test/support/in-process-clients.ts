import { afterEach } from "vitest";
import { createE2eeClient, type E2eeClient } from "../../src/client.js";
import { createMatrixHttp } from "../../src/http/matrix-http.js";
import { loginResponseSchema } from "../../src/http/schemas/auth.js";
import type { MockHomeserver } from "../../src/testing/index.js";

type Account = { userId: string; deviceId: string; accessToken: string };

/**
 * Clients on an in-process mock homeserver, each answering user-interactive auth with `password`,
 * all closed after each test. Call at the top of a test file.
 */
export function useInProcessClients(password: string) {
  const opened: E2eeClient[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  async function open(server: MockHomeserver, account: Account): Promise<E2eeClient> {
    const client = await createE2eeClient({
      baseUrl: server.baseUrl,
      fetch: server.fetch,
      ...account,
      uiaCallback: async () => ({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: account.userId },
        password,
      }),
    });
    opened.push(client);
    return client;
  }

  async function newUser(server: MockHomeserver, localpart: string) {
    const account = server.control.createUser(localpart, { password });
    if (account === undefined) throw new Error(`${localpart} exists`);
    return { account, client: await open(server, account) };
  }

  /** A second login of the user, through `POST /login` (test setup). */
  async function secondLogin(server: MockHomeserver, userId: string): Promise<E2eeClient> {
    const response = await createMatrixHttp({ baseUrl: server.baseUrl, fetch: server.fetch }).request({
      method: "POST",
      path: "/_matrix/client/v3/login",
      body: { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password },
      schema: loginResponseSchema,
      unauthenticated: true,
    });
    return open(server, {
      userId: response.user_id,
      deviceId: response.device_id,
      accessToken: response.access_token,
    });
  }

  return { open, newUser, secondLogin };
}
