import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubLogText } from '../../src/phi/logger.js';
import { quote } from '../../src/errors.js';

function capture() {
  const lines: string[] = [];
  const log = createLogger('test', 'info', {}, { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

describe('the one logger', () => {
  it('masks every quoted caller value and censors bodies, headers and tokens, keeping structural fields', () => {
    const { log, lines } = capture();
    log.info({
      requestId: 'r1', model: 'news2', reason: `input ${quote('Jane Doe MRN A1234567')} has datatype FP64, model "news2" expects FP32`,
      token: 'eyJ.x.y', body: { note: 'Jane Doe' }, headers: { authorization: 'Bearer eyJ.x.y' },
    }, 'request failed');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ requestId: 'r1', model: 'news2', msg: 'request failed', token: '[REDACTED]', body: '[REDACTED]', headers: '[REDACTED]' });
    expect(line.reason).toBe('input "[caller text]" has datatype FP64, model "[caller text]" expects FP32');
    expect(lines.join('')).not.toMatch(/Jane|A1234567|eyJ/);
  });

  it('censors those fields one level down too, without touching the caller\'s object, and keeps an error readable', () => {
    const { log, lines } = capture();
    const req = { url: '/v2/models/news2/infer', headers: { authorization: 'Bearer eyJ.a.b' } };
    const err = Object.assign(new Error('node answered 500'), { body: 'Jane Doe', statusCode: 500 });
    log.warn({ req, request: { body: 'MRN 1234567' }, upstream: { token: 'eyJ.c.d', status: 'ok' }, err }, 'request failed');
    const line = JSON.parse(lines[0]!);
    expect(line.req).toEqual({ url: '/v2/models/news2/infer', headers: '[REDACTED]' });
    expect(line.request).toEqual({ body: '[REDACTED]' });
    expect(line.upstream).toEqual({ token: '[REDACTED]', status: 'ok' });
    expect(line.err).toMatchObject({ message: 'node answered 500', body: '[REDACTED]', statusCode: 500 });
    expect(line.err.stack).toContain('node answered 500');
    expect(lines.join('')).not.toMatch(/Jane|1234567|eyJ/);
    expect(req.headers.authorization).toBe('Bearer eyJ.a.b');
    expect(err.body).toBe('Jane Doe');
  });

  it('leaves the words the code itself writes readable', () => {
    const { log, lines } = capture();
    log.warn({ reason: 'node node-1 failed: ONNXRUNTIME session error', cause: 'RangeError: Invalid typed array length: 4096' }, 'request failed');
    const line = JSON.parse(lines[0]!);
    expect(line.reason).toBe('node node-1 failed: ONNXRUNTIME session error');
    expect(line.cause).toBe('RangeError: Invalid typed array length: 4096');
  });

  it('masks what other libraries quote with single quotes, and long digit runs in causes', () => {
    expect(scrubLogText('reason', "unexpected inference input 'Jane Doe', allowed inputs are: vitals")).toBe("unexpected inference input '[caller text]', allowed inputs are: vitals");
    expect(scrubLogText('cause', 'no record 5550123456 for patient')).toBe('no record [number] for patient');
    // A cut quote keeps its mark of being cut, and escaped quotes inside a literal do not end it.
    expect(scrubLogText('reason', `name ${quote('x'.repeat(100))} is too long`)).toBe('name "[caller text]" is too long');
    expect(scrubLogText('reason', `id ${quote('a"b"c')} refused`)).toBe('id "[caller text]" refused');
  });

  it('writes standard output in batches, and still writes every line when the process exits on its own, by process.exit or by a crash', () => {
    // The default destination holds lines until 4 KB or 100 ms: an exit must not lose what it holds.
    const logger = pathToFileURL(new URL('../../src/phi/logger.ts', import.meta.url).pathname).href;
    const run = (ending: string) => {
      try {
        return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
          `const { createLogger } = await import(${JSON.stringify(logger)});
           const log = createLogger('test', 'info');
           for (let i = 0; i < 3; i++) log.info({ requestId: 'r' + i }, 'request');
           log.fatal({ requestId: 'last' }, 'stopping');
           ${ending}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch (err) {
        return String((err as { stdout?: string }).stdout ?? '');
      }
    };
    for (const ending of ['', 'process.exit(3);', "setTimeout(() => { throw new Error('crash'); }, 1);"]) {
      const lines = run(ending).trim().split('\n').map((l) => JSON.parse(l) as { requestId: string });
      expect(lines.map((l) => l.requestId), ending || 'natural exit').toEqual(['r0', 'r1', 'r2', 'last']);
    }
  });
});
