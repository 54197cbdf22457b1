import { invalid } from '../errors.js';

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
    throw invalid(`${where}: unknown datatype ${JSON.stringify(value)}; expected one of ${DATATYPES.join(', ')}`);
  }
  return value;
}

export function numericInfo(datatype: Exclude<Datatype, 'BYTES'>): NumericInfo {
  return NUMERIC[datatype];
}

/** Validates a shape and returns its element count. */
export function elementCount(shape: readonly number[], where: string): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw invalid(`${where}: shape ${JSON.stringify(shape)} has an invalid dimension ${String(dim)}; dimensions are non-negative integers`);
    }
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw invalid(`${where}: shape ${JSON.stringify(shape)} is too large`);
  return count;
}

export function parseShape(value: unknown, where: string): number[] {
  if (!Array.isArray(value)) throw invalid(`${where}: "shape" must be an array of non-negative integers`);
  const shape = value.map((d) => (typeof d === 'string' && /^\d+$/.test(d) ? Number(d) : d)) as number[];
  elementCount(shape, where);
  return shape;
}
