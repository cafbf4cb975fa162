/**
 * Uniform in [0, 1): the default source of backoff jitter. Injected beside the `Clock` (a `random`
 * option) so tests fix it, as they fix time; nothing else in the client calls `Math.random()`. Jitter
 * only spreads retries out: it is never used for anything secret (keys and ids come from
 * `crypto.getRandomValues`).
 */
export const systemRandom = (): number => Math.random();
