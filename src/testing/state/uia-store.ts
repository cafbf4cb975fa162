import { newSessionId } from "../random-ids.js";

export interface UiaSession {
  id: string;
  /** The request this session authorises: Synapse refuses to reuse it for another. */
  method: string;
  path: string;
  completed: Set<string>;
  /** Values remembered between the calls of one session (e.g. the password given to /register). */
  data: Map<string, unknown>;
}

/** User-interactive-auth sessions by id. */
export class UiaStore {
  readonly #sessions = new Map<string, UiaSession>();

  create(method: string, path: string): UiaSession {
    const session: UiaSession = { id: newSessionId(), method, path, completed: new Set(), data: new Map() };
    this.#sessions.set(session.id, session);
    return session;
  }

  get(id: string): UiaSession | undefined {
    return this.#sessions.get(id);
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }
}
