import { invalid, quote, shapeText } from '../errors.js';
import {
  type Datatype, type Tensor, type NumericData, type TensorLimits, DEFAULT_TENSOR_LIMITS,
  checkName, checkTensorSize, elementCount, numericInfo, parseDatatype, parseShape,
} from './datatypes.js';
import { halfBitsToNumber, bfloat16BitsToNumber } from './half.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export type JsonScalar = number | boolean | string;
export type JsonTensorData = JsonScalar | JsonTensorData[];

export interface JsonTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  data?: JsonTensorData;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads the name/datatype/shape header shared by JSON and binary inputs. */
export function parseTensorHeader(value: unknown, where: string, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): { name: string; datatype: Datatype; shape: number[]; count: number } {
  if (!isRecord(value)) throw invalid(`${where} must be an object with name, shape, datatype and data`);
  const name = checkName(value.name, where, limits);
  const at = `${where} ${quote(name)}`;
  const datatype = parseDatatype(value.datatype, at);
  const shape = parseShape(value.shape, at, limits);
  const count = elementCount(shape, at);
  checkTensorSize(datatype, shape, count, at, limits);
  return { name, datatype, shape, count };
}

/**
 * KServe JSON tensor → internal tensor. `data` may be nested in the tensor's
 * natural shape or flat; either way it must hold exactly prod(shape) elements.
 */
export function tensorFromJson(value: unknown, where = 'input', limits: TensorLimits = DEFAULT_TENSOR_LIMITS): Tensor {
  const { name, datatype, shape, count } = parseTensorHeader(value, where, limits);
  const at = `${where} ${quote(name)}`;
  if (datatype === 'FP16' || datatype === 'BF16') {
    throw invalid(`${at}: ${datatype} has no JSON representation; send it as binary tensor data or over gRPC raw_input_contents`);
  }
  const data = (value as { data?: unknown }).data;
  if (data === undefined) throw invalid(`${at}: "data" is missing`);
  const sink = makeSink(datatype, count, at);
  let written = 0;
  // Iterative flatten: deep nesting from a hostile client must not overflow the stack.
  const stack: unknown[] = [data];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push(item[i]);
      continue;
    }
    if (written >= count) throw invalid(`${at}: data has more than the ${count} elements that shape ${shapeText(shape)} holds`);
    sink.put(written++, item);
  }
  if (written !== count) {
    throw invalid(`${at}: data has ${written} elements but shape ${shapeText(shape)} needs ${count}`);
  }
  return { name, datatype, shape, data: sink.data };
}

interface Sink { data: NumericData | Uint8Array[]; put(index: number, value: unknown): void }

function makeSink(datatype: Exclude<Datatype, 'FP16' | 'BF16'>, count: number, at: string): Sink {
  const bad = (index: number, value: unknown, expected: string): never => {
    throw invalid(`${at}: element ${index} is ${describe(value)}, expected ${expected} for ${datatype}`);
  };
  if (datatype === 'BYTES') {
    const data: Uint8Array[] = new Array<Uint8Array>(count);
    return { data, put: (i, v) => { data[i] = typeof v === 'string' ? utf8.encode(v) : bad(i, v, 'a string'); } };
  }
  if (datatype === 'BOOL') {
    const data = new Uint8Array(count);
    return { data, put: (i, v) => { data[i] = typeof v === 'boolean' ? Number(v) : bad(i, v, 'true or false'); } };
  }
  const { ctor, range } = numericInfo(datatype);
  const data = new ctor(count);
  if (!range) {
    return {
      data,
      put: (i, v) => { (data as Float32Array)[i] = typeof v === 'number' ? v : bad(i, v, 'a number'); },
    };
  }
  const [min, max] = range;
  if (datatype === 'INT64' || datatype === 'UINT64') {
    const big = data as BigInt64Array;
    return {
      data,
      put: (i, v) => {
        const n = toBigInt(v) ?? bad(i, v, 'an integer');
        if (n < min || n > max) bad(i, v, `an integer in [${min}, ${max}]`);
        big[i] = n;
      },
    };
  }
  const lo = Number(min), hi = Number(max);
  const ints = data as Int32Array;
  return {
    data,
    put: (i, v) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) bad(i, v, 'an integer');
      if ((v as number) < lo || (v as number) > hi) bad(i, v, `an integer in [${lo}, ${hi}]`);
      ints[i] = v as number;
    },
  };
}

/** 64-bit integers arrive as JSON numbers (exact up to 2^53) or as decimal strings (exact always). */
function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return BigInt(v);
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Strict: a byte sequence that is not UTF-8 is refused, never replaced; a leading BOM is kept as U+FEFF. */
const exactUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A tensor's flat data as JSON text that reads back as exactly the same
 * values, for a node that takes tensors only as JSON: 64-bit integers as
 * integer literals (JSON numbers have no size limit; a double would round
 * beyond 2^53), BYTES elements as strings. What JSON cannot carry exactly is
 * refused with the element named: a BYTES element that is not UTF-8 text, a
 * NaN or an infinity.
 */
export function exactJsonDataText(t: Tensor, unsupported: (reason: string) => Error): string {
  const { data, datatype } = t;
  if (Array.isArray(data)) {
    return JSON.stringify(data.map((bytes, i) => {
      try {
        return exactUtf8Decoder.decode(bytes);
      } catch {
        throw unsupported(`element ${i} of BYTES tensor ${quote(t.name)} is not UTF-8 text`);
      }
    }));
  }
  if (datatype === 'INT64' || datatype === 'UINT64') return `[${Array.from(data as BigInt64Array, String).join(',')}]`;
  // Every other type reads as the output form writes it (jsonData); only a non-finite float has no JSON form.
  const values = jsonData(t);
  const bad = values.findIndex((v) => typeof v === 'number' && !Number.isFinite(v));
  if (bad !== -1) throw unsupported(`element ${bad} of ${datatype} tensor ${quote(t.name)} is ${values[bad]}, which JSON cannot carry`);
  return JSON.stringify(values);
}

/** Internal tensor → KServe JSON output tensor with flat data. */
export function tensorToJson(t: Tensor): JsonTensor {
  return { name: t.name, datatype: t.datatype, shape: t.shape, data: jsonData(t) };
}

function jsonData(t: Tensor): JsonScalar[] {
  const { data, datatype } = t;
  if (Array.isArray(data)) return data.map((bytes) => utf8Decoder.decode(bytes));
  switch (datatype) {
    case 'BOOL':
      return Array.from(data as Uint8Array, (b) => b !== 0);
    case 'FP16':
      return Array.from(data as Uint16Array, halfBitsToNumber);
    case 'BF16':
      return Array.from(data as Uint16Array, bfloat16BitsToNumber);
    case 'INT64':
    case 'UINT64':
      // JSON numbers are doubles: exact within ±2^53, which is where clinical
      // outputs (class indices, counts) live. Larger values go out as strings.
      return Array.from(data as BigInt64Array, (n) => {
        const asNumber = Number(n);
        return Number.isSafeInteger(asNumber) ? asNumber : n.toString();
      });
    default:
      return Array.from(data as Float32Array);
  }
}
