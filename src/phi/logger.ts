import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * The one logger factory. Request bodies, headers and tokens never get here:
 * callers log named fields only, and these paths are censored in case a
 * future caller slips.
 */
export function createLogger(service: string, level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['authorization', 'token', 'body', 'headers', 'req.headers', 'request.body', '*.authorization', '*.token', '*.body', '*.headers'],
      censor: '[REDACTED]',
    },
  });
}
