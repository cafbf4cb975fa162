export { isSdkError, SdkError } from "./errors/sdk-error.js";
export { TypedEmitter } from "./events/emitter.js";
export { type Logger, prefixedLogger, silentLogger } from "./logger.js";
export { type Clock, systemClock } from "./time/clock.js";
