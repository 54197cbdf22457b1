import { describe, expect, it } from 'vitest';
import { CdsError } from '../../src/errors.js';
import { DATATYPES, type Datatype, type Tensor } from '../../src/tensor/datatypes.js';
import { tensorFromJson, tensorToJson } from '../../src/tensor/json.js';
import { tensorFromRaw, tensorToRaw } from '../../src/tensor/raw.js';
import { tensorFromContents, tensorToContents } from '../../src/tensor/contents.js';
import { matchInputs, matchOutputs } from '../../src/tensor/signature.js';
import { sliceRows } from '../../src/tensor/rows.js';

const SAMPLES: Record<Exclude<Datatype, 'FP16' | 'BF16'>, unknown[]> = {
  BOOL: [true, false, true, true, false, false],
  UINT8: [0, 1, 127, 128, 254, 255],
  UINT16: [0, 1, 300, 65535, 2, 3],
  UINT32: [0, 1, 70000, 4294967295, 5, 6],
  UINT64: [0, 1, 2 ** 40, Number.MAX_SAFE_INTEGER, '18446744073709551615', 7],
  INT8: [-128, -1, 0, 1, 127, 5],
  INT16: [-32768, -1, 0, 1, 32767, 9],
  INT32: [-2147483648, -1, 0, 1, 2147483647, 3],
  INT64: [-(2 ** 40), -1, 0, 1, '9223372036854775807', '-9223372036854775808'],
  FP32: [0, -1.5, 3.25, 1e-3, 65504, -0],
  FP64: [0, -1.5, Math.PI, 1e-300, 1e300, 2 ** -1074],
  BYTES: ['', 'a', 'héllo', '数据', 'x'.repeat(300), '\u0000'],
};

const expectClientError = (fn: () => unknown, pattern: RegExp) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CdsError);
    expect((err as CdsError).kind).toBe('invalid_argument');
    expect((err as CdsError).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a client error');
};

describe('tensor codec round trips', () => {
  for (const [datatype, values] of Object.entries(SAMPLES) as Array<[Exclude<Datatype, 'FP16' | 'BF16'>, unknown[]]>) {
    it(`${datatype}: JSON (nested and flat) → internal → raw → internal → JSON`, () => {
      const nested = tensorFromJson({ name: 'x', datatype, shape: [2, 3], data: [values.slice(0, 3), values.slice(3)] });
      const flat = tensorFromJson({ name: 'x', datatype, shape: [2, 3], data: values });
      expect(tensorToJson(nested)).toEqual(tensorToJson(flat));
      const raw = tensorToRaw(flat);
      const back = tensorFromRaw('x', datatype, [2, 3], raw);
      expect(tensorToJson(back)).toEqual(tensorToJson(flat));
      const viaContents = tensorFromContents('x', datatype, [2, 3], tensorToContents(flat));
      expect(tensorToJson(viaContents)).toEqual(tensorToJson(flat));
    });
  }

  it('keeps 64-bit integers exact through raw bytes and typed contents', () => {
    const t = tensorFromJson({ name: 'x', datatype: 'INT64', shape: [2], data: ['9223372036854775807', '-9223372036854775808'] });
    const back = tensorFromRaw('x', 'INT64', [2], tensorToRaw(t));
    expect(Array.from(back.data as BigInt64Array)).toEqual([9223372036854775807n, -9223372036854775808n]);
    expect(tensorToContents(t)).toEqual({ int64_contents: ['9223372036854775807', '-9223372036854775808'] });
  });

  it('raw little-endian layout is what KServe expects', () => {
    const t = tensorFromJson({ name: 'x', datatype: 'INT32', shape: [1], data: [1] });
    expect(Array.from(tensorToRaw(t))).toEqual([1, 0, 0, 0]);
    const b = tensorFromJson({ name: 's', datatype: 'BYTES', shape: [2], data: ['ab', 'c'] });
    expect(Array.from(tensorToRaw(b))).toEqual([2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99]);
  });

  it('FP16 and BF16 travel raw and decode to numbers in JSON output', () => {
    const fp16 = tensorFromRaw('h', 'FP16', [3], new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff]).buffer));
    expect(tensorToJson(fp16).data).toEqual([1, -2, 65504]);
    const bf16 = tensorFromRaw('b', 'BF16', [1], new Uint8Array(new Uint16Array([0x3f80]).buffer));
    expect(tensorToJson(bf16).data).toEqual([1]);
    expect(Array.from(tensorToRaw(fp16))).toEqual([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
  });

  it('reads unaligned raw buffers (as gRPC hands them over) correctly', () => {
    const backing = new Uint8Array(9);
    backing.set(new Uint8Array(new Float32Array([1.5, -2]).buffer), 1);
    const t = tensorFromRaw('x', 'FP32', [2], backing.subarray(1));
    expect(Array.from(t.data as Float32Array)).toEqual([1.5, -2]);
    const buf = Buffer.alloc(9);
    buf.set(new Uint8Array(new Float32Array([3, 4]).buffer), 1);
    expect(Array.from(tensorFromRaw('x', 'FP32', [2], buf.subarray(1)).data as Float32Array)).toEqual([3, 4]);
  });

  it('covers every datatype in the table', () => {
    expect(new Set([...Object.keys(SAMPLES), 'FP16', 'BF16'])).toEqual(new Set(DATATYPES));
  });
});

describe('tensor codec client errors', () => {
  it('shape and data size mismatch', () => {
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: [1, 7], data: [1, 2, 3] }), /data has 3 elements but shape \[1,7\] needs 7/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: [1, 2], data: [1, 2, 3] }), /more than the 2 elements/);
  });
  it('unknown datatype', () => {
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FLOAT32', shape: [1], data: [1] }), /unknown datatype "FLOAT32"/);
  });
  it('bad shapes', () => {
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: [-1], data: [] }), /invalid dimension -1/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: 'x', data: [] }), /"shape" must be an array/);
  });
  it('wrong element types and ranges', () => {
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: [2], data: [1, 'x'] }), /element 1 is a string, expected a number for FP32/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'UINT8', shape: [1], data: [256] }), /in \[0, 255\]/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'INT32', shape: [1], data: [1.5] }), /expected an integer/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'BOOL', shape: [1], data: [1] }), /expected true or false/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'INT64', shape: [1], data: ['9223372036854775808'] }), /in \[/);
  });
  it('FP16 in JSON is refused with a pointer to binary data', () => {
    expectClientError(() => tensorFromJson({ name: 'h', datatype: 'FP16', shape: [1], data: [1] }), /no JSON representation/);
  });
  it('missing name or data', () => {
    expectClientError(() => tensorFromJson({ datatype: 'FP32', shape: [1], data: [1] }), /"name" must be a non-empty string/);
    expectClientError(() => tensorFromJson({ name: 'v', datatype: 'FP32', shape: [1] }), /"data" is missing/);
  });
  it('raw length mismatch and malformed BYTES', () => {
    expectClientError(() => tensorFromRaw('v', 'FP32', [2], new Uint8Array(7)), /hold 7 bytes but FP32 shape \[2\] needs 8/);
    expectClientError(() => tensorFromRaw('s', 'BYTES', [1], new Uint8Array([5, 0, 0, 0, 1])), /past the end/);
    expectClientError(() => tensorFromRaw('s', 'BYTES', [1], new Uint8Array([0, 0, 0, 0, 9])), /left over/);
    expectClientError(() => tensorFromRaw('b', 'BOOL', [1], new Uint8Array([2])), /expected 0 or 1/);
  });
  it('typed contents of the wrong length', () => {
    expectClientError(() => tensorFromContents('v', 'FP32', [2], { fp32_contents: [1] }), /contents.fp32_contents has 1 elements/);
  });
  it('deep nesting does not overflow the stack', () => {
    let data: unknown = [1];
    for (let i = 0; i < 100_000; i++) data = [data];
    expect(tensorFromJson({ name: 'v', datatype: 'FP32', shape: [1], data }).data).toEqual(new Float32Array([1]));
  });
});

describe('model signature', () => {
  const model = {
    name: 'm', maxBatchSize: 4,
    inputs: [{ name: 'a', datatype: 'FP32' as const, shape: [-1, 2], allowNonFinite: false }, { name: 'b', datatype: 'INT64' as const, shape: [-1, 1], allowNonFinite: false }],
    outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 1], allowNonFinite: false }],
  };
  const t = (name: string, datatype: Datatype, shape: number[]): Tensor => tensorFromJson({ name, datatype, shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(datatype === 'INT64' ? 1 : 1.5) });

  it('returns inputs in model order', () => {
    expect(matchInputs(model, [t('b', 'INT64', [1, 1]), t('a', 'FP32', [1, 2])]).map((x) => x.name)).toEqual(['a', 'b']);
  });
  it('names a wrong input', () => {
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [1, 2]), t('c', 'FP32', [1, 1])]), /model "m" has no input "c"; its inputs are: a, b/);
  });
  it('names a missing input', () => {
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [1, 2])]), /needs input "b" \(INT64 \[-1,1\]\), which is missing/);
  });
  it('rejects a datatype, rank or dimension mismatch and an oversize batch', () => {
    expectClientError(() => matchInputs(model, [t('a', 'FP64', [1, 2]), t('b', 'INT64', [1, 1])]), /has datatype FP64, model "m" expects FP32/);
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [2]), t('b', 'INT64', [1, 1])]), /expects rank 2/);
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [1, 3]), t('b', 'INT64', [1, 1])]), /dimension 1 must be 2/);
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [5, 2]), t('b', 'INT64', [5, 1])]), /batch size 5, above model "m" maximum of 4/);
    expectClientError(() => matchInputs(model, [t('a', 'FP32', [1, 2]), t('a', 'FP32', [1, 2])]), /more than once/);
  });
  it('checks requested outputs', () => {
    expect(matchOutputs(model, [])).toEqual(['y']);
    expectClientError(() => matchOutputs(model, ['z']), /has no output "z"/);
  });
});

describe('a caller\'s rows of a joined answer (sliceRows)', () => {
  // Rows are views into the joined answer's buffer, not copies: every encoder must honour the view, or a caller
  // would be sent the rows of the requests it was joined with.
  const joined: Tensor = { name: 'score', datatype: 'FP32', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
  const words: Tensor = { name: 'band', datatype: 'BYTES', shape: [3], data: ['low', 'medium', 'high'].map((w) => new TextEncoder().encode(w)) };

  it('holds only its own rows in every encoding (raw bytes, JSON, gRPC contents)', () => {
    const middle = sliceRows(joined, 1, 1, 3);
    expect(middle.shape).toEqual([1, 2]);
    expect(Array.from(middle.data as Float32Array)).toEqual([3, 4]);
    expect(Array.from(new Float32Array(tensorToRaw(middle).slice().buffer))).toEqual([3, 4]);
    expect(tensorToRaw(middle).byteLength).toBe(8);
    expect(tensorToJson(middle)).toMatchObject({ shape: [1, 2], data: [3, 4] });
    expect(tensorToContents(middle)).toEqual(tensorToContents({ ...joined, shape: [1, 2], data: new Float32Array([3, 4]) }));
    const last = sliceRows(words, 2, 1, 3);
    expect(tensorToJson(last)).toMatchObject({ shape: [1], data: ['high'] });
  });

  it('refuses an output without the batch dimension first', () => {
    expect(() => sliceRows({ ...joined, shape: [2, 3] }, 0, 1, 3)).toThrow(/batch dimension/);
  });
});
