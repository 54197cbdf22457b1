import pino, { type Logger } from 'pino';

export type { Logger };

/** Fields whose values are our own identifiers and codes: logged as they are. */
const STRUCTURAL = new Set([
  'level', 'time', 'service', 'node', 'msg', 'requestId', 'door', 'route', 'model', 'status', 'error', 'latencyMs', 'subject', 'client',
  'alert', 'kind', 'purposes', 'listener', 'signal', 'ports', 'executionProvider', 'deviceId', 'workers', 'intraOpThreads', 'requested',
  'ready', 'breaker', 'file', 'discardedBytes', 'remoteAddress', 'version', 'faultDelayMs', 'drainGraceMs',
]);

/** A JSON or single-quoted string literal inside a message: how our messages (and most libraries') quote a value. */
const QUOTED = /"(?:[^"\\]|\\.)*"…?/g;
const SINGLE_QUOTED = /'[^'\n]*'/g;
/** A run of digits long enough to be an identifier (MRN, phone, SSN) in a foreign message. */
const LONG_NUMBER = /\d{7,}/g;

/**
 * Free text in a log field. Our own messages quote every value a caller
 * chose (errors.ts `quote`), so masking the quoted literals removes caller
 * data and leaves our words readable. `cause` fields hold other libraries'
 * messages, which may not quote: long digit runs are masked there too.
 */
export function scrubLogText(key: string, text: string): string {
  // Single quotes too: other KServe servers (Triton) quote names that way in the errors we pass on.
  const masked = text.replace(QUOTED, '"[caller text]"').replace(SINGLE_QUOTED, "'[caller text]'");
  return key === 'cause' ? masked.replace(LONG_NUMBER, '[number]') : masked;
}

/**
 * The one logger factory. Callers log named fields only — never a body, a
 * header value or a token — and these paths are censored in case a future
 * caller slips. Every other string field is scrubbed (scrubLogText).
 */
export function createLogger(service: string, level: string, base: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['authorization', 'token', 'body', 'headers', 'req.headers', 'request.body', '*.authorization', '*.token', '*.body', '*.headers'],
      censor: '[REDACTED]',
    },
    formatters: {
      log(object) {
        for (const [key, value] of Object.entries(object)) {
          if (typeof value === 'string' && !STRUCTURAL.has(key)) object[key] = scrubLogText(key, value);
        }
        return object;
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
