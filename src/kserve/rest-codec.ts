import { invalid } from '../errors.js';
import { type TensorLimits, DEFAULT_TENSOR_LIMITS, checkName } from '../tensor/datatypes.js';
import { tensorFromJson, tensorToJson, type JsonTensor } from '../tensor/json.js';
import { checkRequestShape } from './request-limits.js';
import type { InferRequest, InferResult, ParameterValue } from './types.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseParameters(value: unknown, where: string): Record<string, ParameterValue> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw invalid(`${where} must be an object`);
  const out: Record<string, ParameterValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw invalid(`${where}: every value must be a string, number or boolean`);
    }
    out[k] = v;
  }
  return out;
}

/** KServe v2 JSON inference request body → internal request. */
export function inferRequestFromJson(body: unknown, model: string, version: string | undefined, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): InferRequest {
  if (!isRecord(body)) throw invalid('request body must be a JSON object with an "inputs" array');
  const { id, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw invalid('"id" must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw invalid('"inputs" must be a non-empty array');
  if (outputs !== undefined && !Array.isArray(outputs)) throw invalid('"outputs" must be an array of {"name": ...}');
  const request: InferRequest = {
    model,
    version,
    id,
    parameters: parseParameters(body.parameters, 'parameters'),
    inputs: [],
    outputs: (outputs ?? []).map((o: unknown, i: number) => {
      if (!isRecord(o)) throw invalid(`outputs[${i}] must be an object with a "name"`);
      return checkName(o.name, `outputs[${i}]`, limits);
    }),
  };
  // Counts, names and parameters are checked before any tensor's data is read.
  checkRequestShape({ ...request, inputs: inputs as unknown[] }, limits);
  request.inputs = inputs.map((input, i) => tensorFromJson(input, `inputs[${i}]`, limits));
  return request;
}

export interface JsonInferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Record<string, ParameterValue>;
  outputs: JsonTensor[];
}

export function inferResultToJson(res: InferResult): JsonInferResponse {
  return {
    model_name: res.model,
    model_version: res.version,
    ...(res.id !== undefined ? { id: res.id } : {}),
    ...(Object.keys(res.parameters).length ? { parameters: res.parameters } : {}),
    outputs: res.outputs.map(tensorToJson),
  };
}
