/**
 * Display names and avatars (Client-Server spec, "Profiles"). Synapse gives every new user their
 * localpart as display name; the mock does the same lazily, for users it knows, on first read.
 */
export interface UserProfile {
  displayname?: string;
  avatar_url?: string;
}

export type ProfileField = "displayname" | "avatar_url";

export class UserProfileStore {
  readonly #profiles = new Map<string, UserProfile>();

  /** The stored profile, or the localpart default for `userId` when nothing was set yet. */
  get(userId: string): UserProfile {
    const stored = this.#profiles.get(userId);
    if (stored) return { ...stored };
    const localpart = /^@([^:]*):/.exec(userId)?.[1];
    return localpart === undefined ? {} : { displayname: localpart };
  }

  /** Sets or (with `null`) clears one field. */
  set(userId: string, field: ProfileField, value: string | null): void {
    const profile = this.get(userId);
    if (value === null) delete profile[field];
    else profile[field] = value;
    this.#profiles.set(userId, profile);
  }
}
