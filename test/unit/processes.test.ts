import { describe, expect, it } from 'vitest';
import { GATEWAY_V8_FLAGS, v8FlagsFor } from '../../src/cli/processes.js';

describe('the V8 flags a child process starts with', () => {
  it('a gateway gets a larger young generation; a node gets nothing', () => {
    expect(GATEWAY_V8_FLAGS).toContain('--max-semi-space-size=64');
    expect(v8FlagsFor('gateway', '')).toEqual([...GATEWAY_V8_FLAGS]);
    expect(v8FlagsFor('node', '')).toEqual([]);
  });

  it('a size the operator set in NODE_OPTIONS wins, however it is spelled', () => {
    expect(v8FlagsFor('gateway', '--max-semi-space-size=16')).toEqual([]);
    expect(v8FlagsFor('gateway', '--enable-source-maps  --max_semi_space_size=128')).toEqual([]);
  });

  it('other NODE_OPTIONS leave the gateway\'s flags in place', () => {
    expect(v8FlagsFor('gateway', '--max-old-space-size=4096 --enable-source-maps')).toEqual([...GATEWAY_V8_FLAGS]);
  });
});
