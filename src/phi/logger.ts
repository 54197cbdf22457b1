import pino, { type Logger } from 'pino';
import { isoNow } from '../iso-time.js';

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
 * Standard output is written in batches on libuv's thread pool: when 4 KB of
 * lines are waiting, and at least every 100 ms. A write per line (pino's
 * default) cost the gateway about 3% of its CPU per request under load (A/B
 * of two builds, 32 connections, 12 rounds), each write a hand-off to a pool thread and
 * back. The price: a process killed outright (SIGKILL, the OOM killer) loses
 * up to 100 ms of lines; an orderly exit or a crash still writes them (pino
 * flushes on exit), and the audit log, not this one, is the record of every
 * request. If whatever reads standard output stops reading, lines beyond
 * 16 MiB are dropped rather than held in memory without bound.
 */
const BATCH_BYTES = 4096;
const FLUSH_EVERY_MS = 100;
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Fields never logged whatever they hold, at the top of a line or one level down (`*.token`). */
const CENSORED = new Set(['authorization', 'token', 'body', 'headers']);
const CENSOR = '[REDACTED]';

/**
 * A nested object with a censored field becomes a copy with that field
 * replaced (the caller's object is left alone; an Error keeps its message and
 * stack, which are not enumerable); without one it is passed as it is.
 */
function censorNested(value: object): object {
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    if (!CENSORED.has(key) || !Object.hasOwn(value, key)) continue;
    copy ??= Object.create(Object.getPrototypeOf(value), Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
    copy[key] = CENSOR;
  }
  return copy ?? value;
}

/**
 * The one logger factory. Callers log named fields only — never a body, a
 * header value or a token — and those fields are censored (at the top of a
 * line and one level down) in case a future caller slips. Every other string
 * field is scrubbed (scrubLogText).
 *
 * The censoring is done here rather than with pino's `redact` option: that
 * one allocated about 12 KB per request line (measured with a sampling heap
 * profile of the gateway under load), the largest single allocation on the
 * request path, and this walk over the line's own fields allocates nothing
 * unless a field must be censored.
 */
export function createLogger(service: string, level: string, base: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service, ...base },
    // pino's isoTime, from a string made once per millisecond.
    timestamp: () => `,"time":"${isoNow()}"`,
    formatters: {
      log(object) {
        for (const key in object) {
          const value = object[key];
          if (CENSORED.has(key)) object[key] = CENSOR;
          else if (typeof value === 'string') {
            if (!STRUCTURAL.has(key)) object[key] = scrubLogText(key, value);
          } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) object[key] = censorNested(value);
        }
        return object;
      },
    },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES, periodicFlush: FLUSH_EVERY_MS, maxLength: MAX_BUFFERED_BYTES }));
}
