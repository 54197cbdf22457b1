import pino, { type Logger } from 'pino';
import { redactText } from './text-redactor.js';

export type { Logger };

/** Fields whose values are our own identifiers and codes: logged as they are. */
const STRUCTURAL = new Set([
  'level', 'time', 'service', 'node', 'msg', 'requestId', 'door', 'route', 'model', 'status', 'error', 'latencyMs', 'subject', 'client',
  'alert', 'kind', 'purposes', 'listener', 'signal', 'ports', 'executionProvider', 'deviceId', 'workers', 'intraOpThreads', 'requested',
  'ready', 'breaker', 'file', 'discardedBytes', 'remoteAddress', 'version', 'faultDelayMs', 'drainGraceMs',
]);

/**
 * The one logger factory. Callers log named fields only — never a body, a
 * header value or a token — and these paths are censored in case a future
 * caller slips. Every other string (error reasons and causes, which can quote
 * what a client or a library said) goes through the text redactor.
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
          if (typeof value === 'string' && !STRUCTURAL.has(key)) object[key] = redactText(value).text;
        }
        return object;
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
