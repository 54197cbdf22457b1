import { invalid, quote } from '../errors.js';
import type { Tensor, TensorLimits } from '../tensor/datatypes.js';
import { DEFAULT_TENSOR_LIMITS, NODE_RESPONSE_LIMITS, checkName, parseDatatype, parseShape } from '../tensor/datatypes.js';
import { checkRequestShape } from './request-limits.js';
import { tensorFromContents } from '../tensor/contents.js';
import { tensorFromRaw, tensorToRaw } from '../tensor/raw.js';
import type { InferParameter, ModelInferRequest, ModelInferResponse, ModelMetadataResponse, ServerMetadataResponse } from './messages.js';
import type { InferRequest, InferResult, ModelMetadata, ParameterValue, ServerMetadata } from './types.js';

export function parametersFromGrpc(params: Record<string, InferParameter> | undefined): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  // proto-loader (oneofs: true) names the member that is set in parameter_choice.
  for (const [key, p] of Object.entries(params ?? {})) {
    switch (p.parameter_choice) {
      case 'bool_param': out[key] = Boolean(p.bool_param); break;
      case 'int64_param': out[key] = BigInt(p.int64_param ?? 0); break;
      case 'string_param': out[key] = p.string_param ?? ''; break;
      case 'double_param': out[key] = Number(p.double_param ?? 0); break;
      case 'uint64_param': out[key] = { uint64: BigInt(p.uint64_param ?? 0) }; break;
      default: break; // unset or a newer member we do not know: ignored
    }
  }
  return out;
}

export function parametersToGrpc(params: Record<string, ParameterValue>): Record<string, InferParameter> {
  const out: Record<string, InferParameter> = {};
  for (const [key, v] of Object.entries(params)) {
    if (typeof v === 'boolean') out[key] = { bool_param: v };
    else if (typeof v === 'bigint') out[key] = { int64_param: v.toString() };
    else if (typeof v === 'number') out[key] = { double_param: v };
    else if (typeof v === 'object') out[key] = { uint64_param: v.uint64.toString() };
    else out[key] = { string_param: v };
  }
  return out;
}

interface WireTensorHeader { name: string; datatype: string; shape: Array<string | number> }

function decodeTensors(
  headers: Array<WireTensorHeader & { contents?: ModelInferRequest['inputs'][number]['contents'] }>,
  raw: Uint8Array[] | undefined, where: 'input' | 'output', limits: TensorLimits,
): Tensor[] {
  const rawList = raw ?? [];
  if (rawList.length > 0 && rawList.length !== headers.length) {
    throw invalid(`raw_${where}_contents has ${rawList.length} entries for ${headers.length} ${where}s; it needs one per ${where}, in order`);
  }
  return headers.map((h, i) => {
    if (!h.name) throw invalid(`${where} ${i} has no name`);
    checkName(h.name, `${where} ${i}`, limits);
    const at = `${where} ${quote(h.name)}`;
    const datatype = parseDatatype(h.datatype, at);
    const shape = parseShape(h.shape, at, limits);
    if (rawList.length > 0) {
      if (hasContents(h.contents)) throw invalid(`${at}: sets contents while raw_${where}_contents is used; use one or the other`);
      return tensorFromRaw(h.name, datatype, shape, rawList[i]!, where, limits);
    }
    return tensorFromContents(h.name, datatype, shape, h.contents, where, limits);
  });
}

function hasContents(c: ModelInferRequest['inputs'][number]['contents']): boolean {
  return !!c && Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

export function inferRequestFromGrpc(msg: ModelInferRequest, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): InferRequest {
  if (!msg.model_name) throw invalid('model_name is required');
  if (!msg.inputs || msg.inputs.length === 0) throw invalid('a ModelInferRequest needs at least one input');
  const outline = {
    id: msg.id || undefined,
    parameters: parametersFromGrpc(msg.parameters),
    inputs: msg.inputs,
    outputs: (msg.outputs ?? []).map((o, i) => checkName(o.name, `output ${i}`, limits)),
  };
  checkRequestShape(outline, limits);
  return {
    model: msg.model_name,
    version: msg.model_version || undefined,
    ...outline,
    inputs: decodeTensors(msg.inputs, msg.raw_input_contents, 'input', limits),
  };
}

/** Internal request → wire, always with raw contents (smallest and exact). */
export function inferRequestToGrpc(req: InferRequest): ModelInferRequest {
  return {
    model_name: req.model,
    model_version: req.version ?? '',
    id: req.id ?? '',
    parameters: parametersToGrpc(req.parameters),
    inputs: req.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: req.outputs.map((name) => ({ name })),
    raw_input_contents: req.inputs.map(tensorToRaw),
  };
}

export function inferResultToGrpc(res: InferResult): ModelInferResponse {
  return {
    model_name: res.model,
    model_version: res.version,
    id: res.id ?? '',
    parameters: parametersToGrpc(res.parameters),
    outputs: res.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    raw_output_contents: res.outputs.map(tensorToRaw),
  };
}

export function inferResultFromGrpc(msg: ModelInferResponse): InferResult {
  return {
    model: msg.model_name,
    version: msg.model_version,
    id: msg.id || undefined,
    parameters: parametersFromGrpc(msg.parameters),
    outputs: decodeTensors(msg.outputs, msg.raw_output_contents, 'output', NODE_RESPONSE_LIMITS),
  };
}

export const modelMetadataToGrpc = (m: ModelMetadata): ModelMetadataResponse => ({ ...m, parameters: parametersToGrpc(m.parameters) });
export const modelMetadataFromGrpc = (m: ModelMetadataResponse): ModelMetadata => ({
  name: m.name, versions: m.versions, platform: m.platform,
  inputs: m.inputs.map((t) => ({ ...t, shape: t.shape.map(Number) })),
  outputs: m.outputs.map((t) => ({ ...t, shape: t.shape.map(Number) })),
  parameters: parametersFromGrpc(m.parameters),
});
export const serverMetadataToGrpc = (m: ServerMetadata): ServerMetadataResponse => ({ ...m, parameters: parametersToGrpc(m.parameters) });
