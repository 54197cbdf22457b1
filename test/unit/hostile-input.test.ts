import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CdsError, quote, shapeText } from '../../src/errors.js';
import { DATATYPES, type Datatype } from '../../src/tensor/datatypes.js';
import { tensorFromJson } from '../../src/tensor/json.js';
import { tensorFromRaw } from '../../src/tensor/raw.js';
import { tensorFromContents } from '../../src/tensor/contents.js';
import { matchInputs } from '../../src/tensor/signature.js';
import { inferRequestFromJson } from '../../src/kserve/rest-codec.js';
import { inferRequestFromGrpc } from '../../src/kserve/grpc-codec.js';
import { requestIdFrom } from '../../src/kserve/context.js';
import { prepareCallHeaders, wellFormedWire } from '../../src/kserve/grpc-server.js';
import { modelConfigSchema } from '../../src/config/schema.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS } from '../helpers/cluster.js';

function clientError(run: () => unknown): CdsError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(CdsError);
    expect((err as CdsError).kind).toBe('invalid_argument');
    return err as CdsError;
  }
  throw new Error('expected a client error');
}

describe('limits come before allocation', () => {
  // Each of these shapes once allocated gigabytes (or threw a RangeError → 500) before it was refused.
  const hostile: Array<[Datatype, number[]]> = [
    ['FP32', [1_000_000_000, 7]], ['BYTES', [5_000_000_000]], ['INT64', [1_073_741_824, 7]], ['BOOL', [3e9, 2]],
    ['FP32', [1e8, 7]], ['FP64', [2_147_483_648]], ['FP32', [2 ** 26, 2 ** 26]],
  ];
  it.each(hostile)('%s %j is refused from its header on every decoder', (datatype, shape) => {
    const before = process.memoryUsage().arrayBuffers;
    for (const run of [
      () => tensorFromJson({ name: 'x', datatype, shape, data: [1, 2, 3, 4, 5, 6, 7] }),
      () => tensorFromRaw('x', datatype, shape, new Uint8Array(28)),
      () => tensorFromContents('x', datatype, shape, { fp32_contents: [1, 2, 3] }),
    ]) {
      expect(clientError(run).message).toMatch(/above this server's limit|too large|too few/);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses long names, deep ranks and too many tensors with short messages', () => {
    const long = 'N'.repeat(128 * 1024);
    const e = clientError(() => tensorFromJson({ name: long, datatype: 'FP32', shape: [1], data: [1] }));
    expect(e.message.length).toBeLessThan(300);
    clientError(() => tensorFromJson({ name: 'x', datatype: 'FP32', shape: new Array(1000).fill(1), data: [1] }));
    clientError(() => inferRequestFromJson({ inputs: Array.from({ length: 100 }, (_, i) => ({ name: `i${i}`, datatype: 'FP32', shape: [1], data: [1] })) }, 'm', undefined));
    clientError(() => inferRequestFromJson({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }], outputs: [{ name: long }] }, 'm', undefined));
    clientError(() => inferRequestFromGrpc({ model_name: 'm', model_version: '', id: '', parameters: {}, inputs: [{ name: long, datatype: 'FP32', shape: ['1'] }], outputs: [], raw_input_contents: [new Uint8Array(4)] }));
    clientError(() => inferRequestFromJson({ id: 'x'.repeat(10_000), inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }, 'm', undefined));
    const d = clientError(() => tensorFromJson({ name: 'x', datatype: 'D'.repeat(5_000_000), shape: [1], data: [1] }));
    expect(d.message.length).toBeLessThan(300);
  });

  it('decodes 10,000 levels of nesting without recursion', () => {
    let data: unknown = 1;
    for (let i = 0; i < 10_000; i++) data = [data];
    expect(Array.from(tensorFromJson({ name: 'x', datatype: 'FP32', shape: [1], data }).data as Float32Array)).toEqual([1]);
  });

  it('error messages quote at most a short, escaped prefix of any client string', () => {
    fc.assert(fc.property(fc.string({ maxLength: 2_000 }), (text) => {
      const q = quote(text);
      expect(q.length).toBeLessThanOrEqual(JSON.stringify(text.slice(0, 40)).length + 1);
      expect(q.startsWith('"')).toBe(true);
    }), { seed: 8, numRuns: 300 });
    expect(shapeText(new Array(1000).fill(7))).toMatch(/… \(1000 dimensions\)\]$/);
  });

  it('every malformed tensor header is a client error, never another exception (seeded)', () => {
    const header = fc.record({
      name: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(undefined), fc.integer()),
      datatype: fc.oneof(fc.constantFrom(...DATATYPES), fc.string({ maxLength: 10 })),
      shape: fc.oneof(fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(-1), fc.constant(5e9), fc.string({ maxLength: 5 })), { maxLength: 20 }), fc.string()),
      data: fc.oneof(fc.array(fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 4 })), { maxLength: 30 }), fc.constant(undefined)),
    }, { requiredKeys: [] });
    fc.assert(fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, raw) => {
      for (const run of [
        () => tensorFromJson(h),
        () => tensorFromRaw(String(h.name ?? 'x'), DATATYPES.includes(h.datatype as Datatype) ? (h.datatype as Datatype) : 'FP32', Array.isArray(h.shape) ? (h.shape as number[]) : [1], raw),
      ]) {
        try {
          run();
        } catch (err) {
          expect(err).toBeInstanceOf(CdsError);
          expect((err as CdsError).message.length).toBeLessThan(400);
        }
      }
    }), { seed: 1208, numRuns: 2_000 });
  });
});

describe('impossible values never reach a clinical model', () => {
  const news2 = modelConfigSchema.parse(JSON.parse(readFileSync(join(MODELS, 'news2', 'config.json'), 'utf8')));
  const vitals = (row: number[]) => tensorFromJson({ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [row] });

  it('accepts a plausible set of vitals', () => {
    expect(() => matchInputs(news2, [vitals([24, 93, 1, 105, 115, 0, 38.5])])).not.toThrow();
  });

  it.each([
    ['+Infinity (1e400 in JSON)', [1e400, 93, 1, 105, 115, 0, 38.5], /element \[0, 0\] \(respiration_rate\) is Infinity; this model accepts finite numbers only/],
    ['-Infinity', [24, -1e400, 1, 105, 115, 0, 38.5], /\(spo2_scale1\) is -Infinity/],
    ['NaN', [24, 93, 1, NaN, 115, 0, 38.5], /\(systolic_bp\) is NaN/],
    ['above FP32 range', [24, 93, 1, 105, 1e39, 0, 38.5], /\(pulse\) is Infinity/],
    ['temperature in Fahrenheit', [24, 93, 1, 105, 115, 0, 101.3], /\(temperature\) is 101\.3\d*, outside the plausible range \[25, 45\]/],
    ['negative rate', [-4, 93, 1, 105, 115, 0, 38.5], /outside the plausible range \[0, 80\]/],
  ])('%s is refused, naming the element and range', (_what, row, message) => {
    expect(clientError(() => matchInputs(news2, [vitals(row as number[])])).message).toMatch(message);
  });

  it('a model may allow non-finite values explicitly', () => {
    const spec = modelConfigSchema.parse({
      name: 'm', platform: 'onnx_onnxv1', maxBatchSize: 1, versions: {},
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1], allowNonFinite: true }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    });
    expect(() => matchInputs(spec, [tensorFromJson({ name: 'x', datatype: 'FP32', shape: [1, 1], data: [NaN] })])).not.toThrow();
  });

  it('config refuses feature ranges that do not fit the shape', () => {
    expect(() => modelConfigSchema.parse({
      name: 'm', platform: 'onnx_onnxv1', maxBatchSize: 1, versions: {},
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2], featureRanges: [{ min: 0, max: 1 }] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    })).toThrow(/featureRanges/);
  });
});

describe('request ids', () => {
  it('keeps a UUID or hex trace id, and mints one for anything a person could have typed', () => {
    expect(requestIdFrom('3f2504e0-4f89-41d3-9a0c-0305e82c3301')).toEqual({ requestId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301' });
    expect(requestIdFrom('4bf92f3577b34da6a3ce929d0e0e4736')).toEqual({ requestId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    for (const given of ['JaneDoe', 'MRN-12345678', 'jane.doe@example.org', 'a'.repeat(300)]) {
      const { requestId, clientRequestId } = requestIdFrom(given);
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(requestId).not.toBe(given);
      expect(clientRequestId).toBe(given.slice(0, 256));
    }
  });
});

describe('gRPC call headers and wire checks', () => {
  it('every call gets a deadline: the default when none, capped when too long, kept when shorter', () => {
    const none: Record<string, unknown> = {};
    prepareCallHeaders(none as never, [], 10_000, 60_000);
    expect(none['grpc-timeout']).toBe('10000m');
    const long: Record<string, unknown> = { 'grpc-timeout': '5H' };
    prepareCallHeaders(long as never, [], 10_000, 60_000);
    expect(long['grpc-timeout']).toBe('60000m');
    const short: Record<string, unknown> = { 'grpc-timeout': '250m' };
    prepareCallHeaders(short as never, [], 10_000, 60_000);
    expect(short['grpc-timeout']).toBe('250m');
    const garbage: Record<string, unknown> = { 'grpc-timeout': '99999999999S' };
    prepareCallHeaders(garbage as never, [], 10_000, 60_000);
    expect(garbage['grpc-timeout']).toBe('10000m');
  });

  it('two authorization fields on the wire reach the gateway as two values (Node alone would keep the first)', () => {
    const headers: Record<string, unknown> = { authorization: 'Bearer a' };
    prepareCallHeaders(headers as never, ['authorization', 'Bearer a', 'authorization', 'Bearer b'], 10_000, 60_000);
    expect(headers.authorization).toEqual(['Bearer a', 'Bearer b']);
    const single: Record<string, unknown> = { authorization: 'Bearer a' };
    prepareCallHeaders(single as never, ['authorization', 'Bearer a'], 10_000, 60_000);
    expect(single.authorization).toBe('Bearer a');
  });

  it('refuses truncated, over-long and impossible wire formats, accepts real messages (seeded)', () => {
    expect(wellFormedWire(Buffer.from([0x0a, 0x20, 0x6e, 0x65]))).toBe(false); // string runs past the end
    expect(wellFormedWire(Buffer.from([0x08, ...new Array(10).fill(0xff), 0x01]))).toBe(false); // 11-byte varint
    expect(wellFormedWire(Buffer.from([0x0b]))).toBe(false); // group
    expect(wellFormedWire(Buffer.from([0x0a, 0x05, 0x6e, 0x65, 0x77, 0x73, 0x32]))).toBe(true);
    expect(wellFormedWire(Buffer.alloc(0))).toBe(true);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      expect(typeof wellFormedWire(bytes)).toBe('boolean');
    }), { seed: 5, numRuns: 2_000 });
  });
});

describe('request parameters keep their kind through the gateway', () => {
  it('bool, int64, string, double and uint64 (tritonclient\'s priority) survive door → internal → node, on the real proto', async () => {
    const { inferenceServiceDefinition } = await import('../../src/kserve/service.js');
    const { inferRequestToGrpc } = await import('../../src/kserve/grpc-codec.js');
    const method = inferenceServiceDefinition.ModelInfer!;
    const sent = {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: ['1', '1'], contents: { fp32_contents: [1] } }],
      parameters: {
        flag: { bool_param: true }, count: { int64_param: '9007199254740993' }, label: { string_param: 'x' },
        ratio: { double_param: 0.25 }, whole_double: { double_param: 2 }, priority: { uint64_param: '18446744073709551615' },
      },
    };
    const atDoor = method.requestDeserialize(method.requestSerialize(sent)) as Parameters<typeof inferRequestFromGrpc>[0];
    const internal = inferRequestFromGrpc(atDoor);
    const toNode = method.requestDeserialize(method.requestSerialize(inferRequestToGrpc(internal))) as { parameters: Record<string, Record<string, unknown>> };
    expect(toNode.parameters.flag).toMatchObject({ parameter_choice: 'bool_param', bool_param: true });
    expect(toNode.parameters.count).toMatchObject({ parameter_choice: 'int64_param', int64_param: '9007199254740993' });
    expect(toNode.parameters.label).toMatchObject({ parameter_choice: 'string_param', string_param: 'x' });
    expect(toNode.parameters.ratio).toMatchObject({ parameter_choice: 'double_param', double_param: 0.25 });
    expect(toNode.parameters.whole_double).toMatchObject({ parameter_choice: 'double_param', double_param: 2 });
    expect(toNode.parameters.priority).toMatchObject({ parameter_choice: 'uint64_param', uint64_param: '18446744073709551615' });
  });

  it('REST JSON integers are int64, other numbers doubles; binary_data_output stays at the REST door', () => {
    const r = inferRequestFromJson({ parameters: { priority: 2, temperature: 0.5, binary_data_output: true }, inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }, 'm', undefined);
    expect(r.parameters).toEqual({ priority: 2n, temperature: 0.5 });
  });
});
