import * as ort from 'onnxruntime-node';
import type { Datatype, NumericData, Tensor } from '../tensor/datatypes.js';
import { quote } from '../errors.js';

/** A tensor as it crosses the worker boundary: BYTES become strings, which is what ORT string tensors take. */
export interface WireTensor { name: string; datatype: Datatype; shape: number[]; data: NumericData | string[] }

const TO_ORT: Partial<Record<Datatype, ort.Tensor.Type>> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'string',
};
const FROM_ORT = new Map(Object.entries(TO_ORT).map(([k, v]) => [v, k as Datatype]));

/** onnxruntime-node has no bfloat16 tensors; the repository refuses models that use it. */
export const ortSupports = (d: Datatype): boolean => TO_ORT[d] !== undefined;

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Copies into exact-size buffers so only the tensor's bytes are transferred to the worker. */
export function toWire(t: Tensor): { wire: WireTensor; transfer: ArrayBuffer[] } {
  if (Array.isArray(t.data)) return { wire: { ...t, data: t.data.map((b) => utf8.decode(b)) }, transfer: [] };
  const copy = t.data.slice() as NumericData;
  return { wire: { ...t, data: copy }, transfer: [copy.buffer as ArrayBuffer] };
}

export function fromWire(w: WireTensor): Tensor {
  if (Array.isArray(w.data)) return { ...w, data: w.data.map((s) => utf8Encoder.encode(s)) };
  return { ...w, data: w.data };
}

export function toOrt(w: WireTensor): ort.Tensor {
  const type = TO_ORT[w.datatype];
  if (!type) throw new Error(`datatype ${w.datatype} is not supported by onnxruntime-node`);
  return new ort.Tensor(type, w.data as never, w.shape);
}

/**
 * One session run over wire tensors: the outputs asked for, and how long the
 * run held its thread. onnxruntime-node runs the session in a setImmediate
 * callback, after the rest of the event loop's turn (on the node's main
 * thread, other requests' I/O callbacks). Timed from the call, a run would
 * take the blame for that work too; timed from an immediate queued just
 * before it, which runs first, it measures only the run. (Should a later
 * onnxruntime run before that immediate, the time from the call is used.)
 */
export async function runSession(session: ort.InferenceSession, inputs: WireTensor[], outputs: string[]): Promise<{ outputs: WireTensor[]; computeMs: number }> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) feeds[input.name] = toOrt(input);
  const called = performance.now();
  let started = 0;
  setImmediate(() => { started = performance.now(); });
  const results = await session.run(feeds, outputs);
  const computeMs = performance.now() - (started || called);
  return { outputs: outputs.map((name) => fromOrt(name, results[name]!)), computeMs };
}

export function fromOrt(name: string, t: ort.Tensor): WireTensor {
  const datatype = FROM_ORT.get(t.type);
  if (!datatype) throw new Error(`output ${quote(name)} has onnxruntime type ${t.type}, which cdsgate cannot return`);
  return { name, datatype, shape: [...t.dims], data: t.data as NumericData | string[] };
}
