import type { Tensor } from '../tensor/datatypes.js';

/**
 * A request, response or metadata parameter, keeping the kind it came as so
 * it leaves as the same kind: integers are bigint (gRPC int64, exact to 64
 * bits), `{ uint64 }` is gRPC's unsigned kind, a number is a double.
 */
export type ParameterValue = string | boolean | number | bigint | { uint64: bigint };

/** A parameter as JSON can carry it: 64-bit integers as numbers when exact, else as decimal strings. */
export function parameterToJson(v: ParameterValue): string | number | boolean {
  const n = typeof v === 'bigint' ? v : typeof v === 'object' ? v.uint64 : undefined;
  if (n === undefined) return v as string | number | boolean;
  return Number.isSafeInteger(Number(n)) ? Number(n) : n.toString();
}

export const parametersToJson = (params: Record<string, ParameterValue>): Record<string, string | number | boolean> =>
  Object.fromEntries(Object.entries(params).map(([k, v]) => [k, parameterToJson(v)]));

/** The one internal request every door produces and the node consumes. */
export interface InferRequest {
  model: string;
  version?: string;
  id?: string;
  parameters: Record<string, ParameterValue>;
  inputs: Tensor[];
  /** Requested outputs; empty means all. */
  outputs: string[];
  /** Set only by the gateway's de-identification step; a de-identified pool accepts nothing else. */
  deidentified?: boolean;
}

export interface InferResult {
  model: string;
  version: string;
  id?: string;
  parameters: Record<string, ParameterValue>;
  outputs: Tensor[];
}

export interface TensorMeta { name: string; datatype: string; shape: number[] }

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  parameters: Record<string, ParameterValue>;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
  parameters: Record<string, ParameterValue>;
}
