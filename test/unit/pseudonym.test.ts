import { describe, expect, it } from 'vitest';
import { Pseudonymizer } from '../../src/phi/pseudonym.js';

// Values computed with the earlier implementation (one HMAC update per field, a new key import per call). Records written
// under a key must keep verifying, so the encoding of pseudonyms and input digests may never change.
const psn = Pseudonymizer.fromSecret(Buffer.alloc(32, 7), 'k1');
const inputs = [
  { name: 'vitals', datatype: 'FP32', shape: [1, 2], bytes: new Uint8Array(new Float32Array([24, 93]).buffer) },
  { name: 'note', datatype: 'BYTES', shape: [1], bytes: Buffer.from([5, 0, 0, 0, 104, 101, 108, 108, 111]) },
];

describe('pseudonyms and input digests', () => {
  it('keep their encoding (pinned values)', () => {
    expect(psn.inputDigest(inputs)).toBe('hmac-sha256:k1:75fdf55d35f363b8ba1b51d1d5170f9e2afe0ede43b36618e1d08510b2ff5e69');
    expect(psn.pseudonym('patient', 'MRN-0001')).toBe('psn_k1_4l3tfhbhqrsmer7udmzgb6y75g');
  });

  it('tell apart inputs that differ only in where one field ends and the next begins', () => {
    const a = psn.inputDigest([{ name: 'ab', datatype: 'FP32', shape: [1], bytes: new Uint8Array(4) }]);
    const b = psn.inputDigest([{ name: 'a', datatype: 'BFP32', shape: [1], bytes: new Uint8Array(4) }]);
    const c = psn.inputDigest([{ name: 'x', datatype: 'UINT8', shape: [2], bytes: new Uint8Array(2) }, { name: 'y', datatype: 'UINT8', shape: [0], bytes: new Uint8Array(0) }]);
    const d = psn.inputDigest([{ name: 'x', datatype: 'UINT8', shape: [2], bytes: new Uint8Array(1) }, { name: 'y', datatype: 'UINT8', shape: [1], bytes: new Uint8Array(1) }]);
    expect(new Set([a, b, c, d]).size).toBe(4);
    expect(psn.matchesDigest(a, [{ name: 'ab', datatype: 'FP32', shape: [1], bytes: new Uint8Array(4) }])).toBe(true);
  });

  it('depend on the key', () => {
    const other = Pseudonymizer.fromSecret(Buffer.alloc(32, 8), 'k1');
    expect(other.inputDigest(inputs)).not.toBe(psn.inputDigest(inputs));
    expect(other.pseudonym('patient', 'MRN-0001')).not.toBe(psn.pseudonym('patient', 'MRN-0001'));
  });
});
