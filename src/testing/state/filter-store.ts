/**
 * Uploaded sync filters (Client-Server spec, "Filtering"). Ids are per user and count up from 0 as
 * decimal strings, as Synapse's `user_filters` table hands them out.
 */
export class FilterStore {
  readonly #byUser = new Map<string, Record<string, unknown>[]>();

  add(userId: string, filter: Record<string, unknown>): string {
    let filters = this.#byUser.get(userId);
    if (!filters) {
      filters = [];
      this.#byUser.set(userId, filters);
    }
    filters.push(structuredClone(filter));
    return String(filters.length - 1);
  }

  /** The filter as uploaded, or `undefined` for an id this user never got. */
  get(userId: string, filterId: string): Record<string, unknown> | undefined {
    if (!/^\d{1,15}$/.test(filterId)) return undefined;
    const filter = this.#byUser.get(userId)?.[Number(filterId)];
    return filter === undefined ? undefined : structuredClone(filter);
  }
}
