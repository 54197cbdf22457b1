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
    timestamp: pino.stdTimeFunctions.isoTime,
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

type StructuralValue = string | number | undefined;

/**
 * A writer of one kind of line whose fields are all STRUCTURAL (our own
 * identifiers and codes, which the formatter above passes unchanged): the
 * line the gateway writes for every answered request. It writes the line
 * `log[level](fields, msg)` writes, without pino's generic walk over an
 * object. Timed in the gateway under load (32 connections, the mean of
 * 20,000 calls, wall time on the event loop): `log.info(line, 'request')`
 * took 19–20 µs, 11 of them before the destination's write; this writer
 * 13 µs, 7.6 of them the destination's write, which it still calls.
 *
 * The text is pino's (a test compares the two over fuzzed values), except
 * that a lone surrogate, which pino writes raw into a short string, is
 * escaped here as JSON.stringify escapes it; both parse to the same value.
 * Field names are fixed when the writer is made and each must be STRUCTURAL,
 * so no caller text can reach a line unscrubbed through it; an undefined
 * value leaves its field out, as pino does. Lines with any other field go
 * through the logger.
 */
export function structuralLineWriter(log: Logger, level: 'info' | 'warn', fieldNames: readonly string[], msg: string): (values: readonly StructuralValue[]) => void {
  for (const name of fieldNames) {
    if (!STRUCTURAL.has(name) || CENSORED.has(name)) throw new Error(`log field ${name} is not structural; log it through the logger`);
  }
  const keys = fieldNames.map((name) => `,${JSON.stringify(name)}:`);
  const tail = `,"msg":${JSON.stringify(msg)}}\n`;
  return (values) => {
    if (!log.isLevelEnabled(level)) return;
    const stream = (log as unknown as Record<symbol, pino.DestinationStream & { [key: symbol]: unknown }>)[pino.symbols.streamSym]!;
    const internals = log as unknown as Record<symbol, unknown>;
    // A stream that wants pino's per-line metadata (multistream) is written through the logger.
    if (stream[Symbol.for('pino.metadata')] === true) {
      const fields: Record<string, StructuralValue> = {};
      fieldNames.forEach((name, i) => { fields[name] = values[i]; });
      log[level](fields, msg);
      return;
    }
    let line = `${(internals[pino.symbols.lsCacheSym] as Record<number, string>)[log.levels.values[level]!]}${(internals[pino.symbols.timeSym] as () => string)()}${internals[pino.symbols.chindingsSym] as string}`;
    for (let i = 0; i < keys.length; i++) {
      const value = values[i];
      if (value === undefined) continue;
      line += keys[i]! + (typeof value === 'number' ? (Number.isFinite(value) ? String(value) : 'null') : JSON.stringify(value));
    }
    stream.write(line + tail);
  };
}
