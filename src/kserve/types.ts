import type { Tensor } from '../tensor/datatypes.js';

export type ParameterValue = string | number | boolean;

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
