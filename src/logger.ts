/**
 * The logger shape matrix-js-sdk uses, so an app can pass its existing logger. Callers must never
 * pass keys, recovery keys or access tokens to it.
 */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** The default: logs nothing. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Prefixes every line, e.g. `[dehydration]`, without changing the sink. */
export function prefixedLogger(logger: Logger, prefix: string): Logger {
  return {
    debug: (...a) => logger.debug(prefix, ...a),
    info: (...a) => logger.info(prefix, ...a),
    warn: (...a) => logger.warn(prefix, ...a),
    error: (...a) => logger.error(prefix, ...a),
  };
}
