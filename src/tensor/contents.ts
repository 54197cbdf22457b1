import { invalid, quote, shapeText } from '../errors.js';
import type { InferTensorContents } from '../kserve/messages.js';
import { type Datatype, type Tensor, type TensorLimits, DEFAULT_TENSOR_LIMITS, checkTensorSize, elementCount, numericInfo } from './datatypes.js';

type ContentsField = keyof InferTensorContents;

const FIELD: Record<Exclude<Datatype, 'FP16' | 'BF16'>, ContentsField> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** gRPC typed `contents` → internal tensor. */
export function tensorFromContents(
  name: string, datatype: Datatype, shape: number[], contents: InferTensorContents | null | undefined, where = 'input',
  limits: TensorLimits = DEFAULT_TENSOR_LIMITS,
): Tensor {
  const at = `${where} ${quote(name)}`;
  if (datatype === 'FP16' || datatype === 'BF16') {
    throw invalid(`${at}: ${datatype} must be sent in raw_input_contents; typed contents have no ${datatype} field`);
  }
  const count = elementCount(shape, at);
  checkTensorSize(datatype, shape, count, at, limits);
  const field = FIELD[datatype];
  const values = (contents?.[field] ?? []) as unknown[];
  if (values.length !== count) {
    throw invalid(`${at}: contents.${field} has ${values.length} elements but shape ${shapeText(shape)} needs ${count}`);
  }
  if (datatype === 'BYTES') return { name, datatype, shape, data: (values as Uint8Array[]).map((b) => new Uint8Array(b)) };
  if (datatype === 'BOOL') return { name, datatype, shape, data: Uint8Array.from(values as boolean[], Number) };
  const { ctor, range } = numericInfo(datatype);
  const data = new ctor(count);
  if (datatype === 'INT64' || datatype === 'UINT64') {
    const [min, max] = range!;
    const big = data as BigInt64Array;
    values.forEach((v, i) => {
      const n = BigInt(v as string | number);
      if (n < min || n > max) throw invalid(`${at}: element ${i} (${n}) is out of range for ${datatype}`);
      big[i] = n;
    });
  } else if (range) {
    const [lo, hi] = [Number(range[0]), Number(range[1])];
    const ints = data as Int32Array;
    values.forEach((v, i) => {
      const n = v as number;
      if (n < lo || n > hi) throw invalid(`${at}: element ${i} (${n}) is out of range for ${datatype}`);
      ints[i] = n;
    });
  } else {
    (data as Float64Array).set(values as number[]);
  }
  return { name, datatype, shape, data };
}

/** Internal tensor → gRPC typed `contents` (used when a caller asks for typed outputs). */
export function tensorToContents(t: Tensor): InferTensorContents {
  if (t.datatype === 'FP16' || t.datatype === 'BF16') {
    throw invalid(`output ${quote(t.name)}: ${t.datatype} can only be returned in raw_output_contents`);
  }
  const field = FIELD[t.datatype];
  const { data } = t;
  if (Array.isArray(data)) return { [field]: data };
  if (t.datatype === 'BOOL') return { [field]: Array.from(data as Uint8Array, (b) => b !== 0) };
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') return { [field]: Array.from(data as BigInt64Array, String) };
  return { [field]: Array.from(data as Float32Array) };
}
