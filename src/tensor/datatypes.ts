import { invalid, quote, shapeText } from '../errors.js';

export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64',
  'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'BF16', 'FP32', 'FP64', 'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

export type NumericData =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

/**
 * Element storage of a tensor, row-major:
 * BOOL → Uint8Array of 0/1; FP16/BF16 → Uint16Array of the raw bit patterns;
 * BYTES → one Uint8Array per element.
 */
export type TensorData = NumericData | Uint8Array[];

/** The internal tensor every door and the node agree on. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

type TypedArrayCtor = {
  new (length: number): NumericData;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericData;
  BYTES_PER_ELEMENT: number;
};

interface NumericInfo {
  ctor: TypedArrayCtor;
  /** Inclusive integer range for JSON/typed-content validation; undefined for floats. */
  range?: [bigint, bigint];
}

const NUMERIC: Record<Exclude<Datatype, 'BYTES'>, NumericInfo> = {
  BOOL: { ctor: Uint8Array, range: [0n, 1n] },
  UINT8: { ctor: Uint8Array, range: [0n, 255n] },
  UINT16: { ctor: Uint16Array, range: [0n, 65535n] },
  UINT32: { ctor: Uint32Array, range: [0n, 4294967295n] },
  UINT64: { ctor: BigUint64Array as unknown as TypedArrayCtor, range: [0n, 2n ** 64n - 1n] },
  INT8: { ctor: Int8Array, range: [-128n, 127n] },
  INT16: { ctor: Int16Array, range: [-32768n, 32767n] },
  INT32: { ctor: Int32Array, range: [-(2n ** 31n), 2n ** 31n - 1n] },
  INT64: { ctor: BigInt64Array as unknown as TypedArrayCtor, range: [-(2n ** 63n), 2n ** 63n - 1n] },
  FP16: { ctor: Uint16Array },
  BF16: { ctor: Uint16Array },
  FP32: { ctor: Float32Array },
  FP64: { ctor: Float64Array },
};

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && (DATATYPES as readonly string[]).includes(value);
}

export function parseDatatype(value: unknown, where: string): Datatype {
  if (!isDatatype(value)) {
    throw invalid(`${where}: unknown datatype ${quote(value, 24)}; expected one of ${DATATYPES.join(', ')}`);
  }
  return value;
}

export function numericInfo(datatype: Exclude<Datatype, 'BYTES'>): NumericInfo {
  return NUMERIC[datatype];
}

/**
 * Bounds on what one decoded request may hold. They are checked on the
 * header (name, datatype, shape) before any element is read or any buffer is
 * allocated, so a hostile shape costs nothing.
 */
export interface TensorLimits {
  /** Largest tensor, in bytes of its element storage (BYTES: 4 bytes an element at least). */
  maxTensorBytes: number;
  /** Longest tensor, output or parameter name, in characters. */
  maxNameLength: number;
  /** Most dimensions a shape may have. */
  maxRank: number;
  /** Most inputs (or outputs, or parameters) one request may name. */
  maxTensors: number;
}

export const DEFAULT_TENSOR_LIMITS: TensorLimits = { maxTensorBytes: 8 * 1024 * 1024, maxNameLength: 128, maxRank: 16, maxTensors: 64 };

/** A node's answer, read by the gateway: bounded by the transport's message limit, not by the request limits. */
export const NODE_RESPONSE_LIMITS: TensorLimits = { maxTensorBytes: Number.MAX_SAFE_INTEGER, maxNameLength: 1024, maxRank: 64, maxTensors: 1024 };

/** Validates a shape and returns its element count. */
export function elementCount(shape: readonly number[], where: string): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw invalid(`${where}: shape ${shapeText(shape)} has an invalid dimension ${quote(dim, 24)}; dimensions are non-negative integers`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw invalid(`${where}: shape ${shapeText(shape)} is too large`);
  return count;
}

export function parseShape(value: unknown, where: string, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): number[] {
  if (!Array.isArray(value)) throw invalid(`${where}: "shape" must be an array of non-negative integers`);
  if (value.length > limits.maxRank) throw invalid(`${where}: shape has ${value.length} dimensions; this server accepts at most ${limits.maxRank}`);
  const shape = value.map((d) => (typeof d === 'string' && /^\d{1,16}$/.test(d) ? Number(d) : d)) as number[];
  elementCount(shape, where);
  return shape;
}

/** Bytes of element storage a tensor needs at the least; BYTES counts the 4-byte length of each element. */
export function minimumTensorBytes(datatype: Datatype, count: number): number {
  return count * (datatype === 'BYTES' ? 4 : NUMERIC[datatype].ctor.BYTES_PER_ELEMENT);
}

/** Refuses a tensor whose header asks for more storage than the limit, before anything is allocated. */
export function checkTensorSize(datatype: Datatype, shape: readonly number[], count: number, where: string, limits: TensorLimits): void {
  const bytes = minimumTensorBytes(datatype, count);
  if (bytes > limits.maxTensorBytes) {
    throw invalid(`${where}: ${datatype} shape ${shapeText(shape)} holds ${count} elements (${bytes} bytes), above this server's limit of ${limits.maxTensorBytes} bytes per tensor`);
  }
}

/** A tensor, output or parameter name: a non-empty string no longer than the limit. */
export function checkName(value: unknown, where: string, limits: TensorLimits): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${where}: "name" must be a non-empty string`);
  if (value.length > limits.maxNameLength) throw invalid(`${where}: name ${quote(value)} is ${value.length} characters long; this server accepts at most ${limits.maxNameLength}`);
  return value;
}
