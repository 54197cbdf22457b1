import { CdsError } from '../errors.js';
import type { NumericData, Tensor, TensorData } from './datatypes.js';

/*
 * Batching along the first (batch) dimension, the one rule for it: the
 * node's dynamic batcher joins requests for one model run, and the
 * gateway's coalescer joins requests for one node call; both split the
 * answer back the same way.
 */

/** Tensors of one input from several requests, joined along the batch dimension (row-major: the data simply follows). */
export function concatRows(parts: Tensor[]): Tensor {
  const first = parts[0]!;
  const rows = parts.reduce((n, t) => n + t.shape[0]!, 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (Array.isArray(first.data)) return { ...first, shape, data: parts.flatMap((t) => t.data as Uint8Array[]) };
  const total = parts.reduce((n, t) => n + (t.data as NumericData).length, 0);
  const Ctor = (first.data as NumericData).constructor as new (n: number) => NumericData;
  const data = new Ctor(total);
  let at = 0;
  for (const t of parts) {
    (data as { set(a: ArrayLike<number | bigint>, o: number): void }).set(t.data as ArrayLike<number | bigint>, at);
    at += (t.data as NumericData).length;
  }
  return { ...first, shape, data };
}

/**
 * Rows [start, start + count) of a batched output, as a tensor of its own.
 * Numeric rows are a view into the batch's buffer, not a copy: every caller's
 * share of a joined answer is read (encoded for its caller) and never written,
 * and a copy per caller was a new ArrayBuffer each, which the young-generation
 * collector must sweep (under load these copies were about an eighth of the
 * bytes the gateway promoted to the old generation). Encoders honour a view's
 * offset (raw.ts tensorToRaw, json.ts, contents.ts; tested).
 */
export function sliceRows(t: Tensor, start: number, count: number, totalRows: number): Tensor {
  const perRow = t.shape[0] === totalRows ? (Array.isArray(t.data) ? t.data.length : (t.data as NumericData).length) / totalRows : NaN;
  if (!Number.isInteger(perRow)) throw new CdsError('internal', `output ${t.name} does not have the batch dimension first; the model cannot be batched`);
  const data: TensorData = Array.isArray(t.data)
    ? t.data.slice(start * perRow, (start + count) * perRow)
    : (t.data as NumericData).subarray(start * perRow, (start + count) * perRow);
  return { ...t, shape: [count, ...t.shape.slice(1)], data };
}

/**
 * The rows a request carries: the first dimension, when every input has one
 * and they agree. Undefined when the request cannot join a batch (a scalar
 * input, or inputs of different lengths).
 */
export function batchRows(inputs: readonly Tensor[]): number | undefined {
  const rows = inputs[0]?.shape[0];
  if (rows === undefined || rows < 1) return undefined;
  return inputs.every((t) => t.shape.length > 0 && t.shape[0] === rows) ? rows : undefined;
}

/** Requests that may share a batch ask for the same outputs and send the same inputs, datatypes and non-batch dimensions. */
export const batchKey = (inputs: readonly Tensor[], outputs: readonly string[]): string =>
  `${outputs.join('\0')}\u0001${inputs.map((t) => `${t.name}:${t.datatype}:${t.shape.slice(1).join(',')}`).join('\0')}`;
