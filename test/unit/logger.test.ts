import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/phi/logger.js';

describe('the one logger', () => {
  it('scrubs free-text fields and censors bodies, headers and tokens, keeping structural fields', () => {
    const lines: string[] = [];
    const log = createLogger('test', 'info', {}, { write: (line: string) => void lines.push(line) });
    log.info({
      requestId: 'r1', model: 'news2', reason: 'failed for Jane Doe, MRN: A1234567, born 03/04/1950',
      token: 'eyJ.x.y', body: { note: 'Jane Doe' }, headers: { authorization: 'Bearer eyJ.x.y' },
    }, 'request failed');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ requestId: 'r1', model: 'news2', msg: 'request failed', token: '[REDACTED]', body: '[REDACTED]', headers: '[REDACTED]' });
    expect(line.reason).toBe('failed for [NAME], MRN: [ID], born [DATE]');
    expect(lines.join('')).not.toMatch(/Jane|A1234567|eyJ/);
  });
});
