/**
 * The names of the server profiles (profiles.ts). On their own so that the per-feature flag tables
 * (e2ee-flags.ts, dehydration-flags.ts), which profiles.ts is built from, can be keyed by them.
 */
export type ProfileName = "synapse-1.157" | "synapse-1.156" | "tuwunel" | "continuwuity" | "msc";
