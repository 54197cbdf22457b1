import { invalid } from '../errors.js';
import { type Tensor, type TensorLimits, DEFAULT_TENSOR_LIMITS, NODE_RESPONSE_LIMITS, checkName, parseDatatype } from '../tensor/datatypes.js';
import { exactJsonDataText, tensorFromJson, tensorToJson, parseTensorHeader, type JsonTensor } from '../tensor/json.js';
import { tensorFromRaw, tensorToRaw } from '../tensor/raw.js';
import { checkRequestShape } from './request-limits.js';
import { parametersToJson, type InferRequest, type InferResult, type ModelMetadata, type ParameterValue, type TensorMeta } from './types.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An optional field given as JSON null is absent: clients and servers built
 * from typed models (pydantic's MLServer types, OpenAPI-generated clients)
 * write every unset optional field as null.
 */
const absent = (value: unknown): value is null | undefined => value === undefined || value === null;

function parseParameters(value: unknown, where: string): Record<string, ParameterValue> {
  if (absent(value)) return {};
  if (!isRecord(value)) throw invalid(`${where} must be an object`);
  const out: Record<string, ParameterValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null) continue; // unset, as above
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw invalid(`${where}: every value must be a string, number or boolean`);
    }
    // A JSON integer is an int64 parameter (as Triton reads it); any other number a double.
    out[k] = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  }
  return out;
}

/**
 * KServe v2 JSON inference request → internal request. With the Triton binary
 * tensor extension, `binary` holds the bytes after the JSON header: each input
 * whose parameters give `binary_data_size` takes that many bytes, in order,
 * and every byte must be taken.
 */
export function inferRequestFromJson(body: unknown, model: string, version: string | undefined, limits: TensorLimits = DEFAULT_TENSOR_LIMITS, binary?: Uint8Array): InferRequest {
  if (!isRecord(body)) throw invalid('request body must be a JSON object with an "inputs" array');
  const { inputs } = body;
  const id = absent(body.id) ? undefined : body.id;
  const outputs = absent(body.outputs) ? [] : body.outputs;
  if (id !== undefined && typeof id !== 'string') throw invalid('"id" must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw invalid('"inputs" must be a non-empty array');
  if (!Array.isArray(outputs)) throw invalid('"outputs" must be an array of {"name": ...}');
  const parameters = parseParameters(body.parameters, 'parameters');
  // A presentation choice of the REST door (binary outputs), not something to forward to a node.
  delete parameters[BINARY_DATA_OUTPUT];
  const request: InferRequest = {
    model,
    version,
    id,
    parameters,
    inputs: [],
    outputs: outputs.map((o: unknown, i: number) => {
      if (!isRecord(o)) throw invalid(`outputs[${i}] must be an object with a "name"`);
      return checkName(o.name, `outputs[${i}]`, limits);
    }),
  };
  // Counts, names and parameters are checked before any tensor's data is read.
  checkRequestShape({ ...request, inputs: inputs as unknown[] }, limits);
  request.inputs = tensorsFromRest(inputs, binary, 'inputs', limits);
  return request;
}

/**
 * A list of JSON tensors (request inputs or response outputs). With the Triton
 * binary tensor extension, `binary` holds the bytes after the JSON header: each
 * tensor whose parameters give `binary_data_size` takes that many bytes, in
 * order, and every byte must be taken.
 */
function tensorsFromRest(items: unknown[], binary: Uint8Array | undefined, where: 'inputs' | 'outputs', limits: TensorLimits): Tensor[] {
  let offset = 0;
  const tensors = items.map((item, i) => {
    const size = binaryDataSize(item, `${where}[${i}]`);
    if (size === undefined) return tensorFromJson(item, `${where}[${i}]`, limits);
    const { name, datatype, shape } = parseTensorHeader(item, `${where}[${i}]`, limits);
    if (!binary || offset + size > binary.length) {
      throw invalid(`${where}[${i}]: binary_data_size is ${size} but only ${binary ? binary.length - offset : 0} bytes of binary data follow the JSON header`);
    }
    const bytes = binary.subarray(offset, offset + size);
    offset += size;
    return tensorFromRaw(name, datatype, shape, bytes, `${where}[${i}]`, limits);
  });
  if (binary && offset !== binary.length) {
    throw invalid(`${binary.length - offset} bytes of binary data after the JSON header belong to no ${where === 'inputs' ? 'input' : 'output'} (binary_data_size accounts for ${offset})`);
  }
  return tensors;
}

const BINARY_DATA_OUTPUT = 'binary_data_output';

/** An input's `parameters.binary_data_size`, when it has one: a whole number of bytes. */
function binaryDataSize(input: unknown, where: string): number | undefined {
  const params = isRecord(input) && isRecord(input.parameters) ? input.parameters : undefined;
  const size = params?.binary_data_size;
  if (absent(size)) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}: parameters.binary_data_size must be a whole number of bytes`);
  if (isRecord(input) && !absent(input.data)) throw invalid(`${where}: has both "data" and binary_data_size; send one or the other`);
  return size;
}

/** Which outputs the caller wants as binary tensor data: all of them, or those named with `binary_data: true`. */
export interface BinaryOutputChoice { all: boolean; names: ReadonlySet<string> }

export function binaryOutputChoice(body: unknown): BinaryOutputChoice {
  if (!isRecord(body)) return { all: false, names: new Set() };
  const all = isRecord(body.parameters) && body.parameters[BINARY_DATA_OUTPUT] === true;
  const names = new Set<string>();
  if (Array.isArray(body.outputs)) {
    for (const o of body.outputs) {
      if (isRecord(o) && typeof o.name === 'string' && isRecord(o.parameters) && o.parameters.binary_data === true) names.add(o.name);
    }
  }
  return { all, names };
}

export interface JsonInferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Record<string, string | number | boolean>;
  outputs: JsonTensor[];
}

/**
 * The REST answer. With binary outputs (Triton's extension), the JSON header
 * names each binary output's `binary_data_size` and the raw bytes follow it,
 * in output order; `headerLength` is what Inference-Header-Content-Length says.
 */
export function inferResultToRest(res: InferResult, binary: BinaryOutputChoice): { json: JsonInferResponse } | { body: Buffer; headerLength: number } {
  const wantsBinary = (name: string) => binary.all || binary.names.has(name);
  if (!res.outputs.some((t) => wantsBinary(t.name))) return { json: inferResultToJson(res) };
  const tails: Uint8Array[] = [];
  const json = inferResultToJson(res, (t) => {
    if (!wantsBinary(t.name)) return undefined;
    const raw = tensorToRaw(t);
    tails.push(raw);
    return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: raw.byteLength } };
  });
  const header = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([header, ...tails]), headerLength: header.length };
}

export function inferResultToJson(res: InferResult, asBinary: (t: InferResult['outputs'][number]) => JsonTensor | undefined = () => undefined): JsonInferResponse {
  return {
    model_name: res.model,
    model_version: res.version,
    ...(res.id !== undefined ? { id: res.id } : {}),
    ...(Object.keys(res.parameters).length ? { parameters: parametersToJson(res.parameters) } : {}),
    outputs: res.outputs.map((t) => asBinary(t) ?? tensorToJson(t)),
  };
}

/**
 * The gateway's call to a node's REST door (KServe v2 with Triton's binary
 * tensor extension, which Triton and our nodes read): every input as raw bytes
 * after the JSON header and every output asked for as raw bytes, so no tensor
 * makes a JSON round trip in either direction.
 */
export function inferRequestToRest(req: InferRequest): { body: Buffer; headerLength: number } {
  const tails: Uint8Array[] = [];
  const header = Buffer.from(JSON.stringify({
    ...(req.id !== undefined ? { id: req.id } : {}),
    parameters: { ...parametersToJson(req.parameters), [BINARY_DATA_OUTPUT]: true },
    inputs: req.inputs.map((t) => {
      const raw = tensorToRaw(t);
      tails.push(raw);
      return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: raw.byteLength } };
    }),
    ...(req.outputs.length ? { outputs: req.outputs.map((name) => ({ name, parameters: { binary_data: true } })) } : {}),
  }));
  return { body: tails.length ? Buffer.concat([header, ...tails]) : header, headerLength: header.length };
}

/**
 * The gateway's call to a node whose server metadata does not list Triton's
 * binary tensor extension (a KServe v2 server that takes the Open Inference
 * Protocol's JSON form only): every tensor as exact JSON data
 * (tensor/json.ts, exactJsonDataText), outputs asked for by name only, so the
 * answer comes back as JSON too. `unsupported` makes the error for a value
 * that JSON cannot carry exactly.
 */
export function inferRequestToRestJson(req: InferRequest, unsupported: (reason: string) => Error): Buffer {
  const inputs = req.inputs.map((t) => `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)},"data":${exactJsonDataText(t, unsupported)}}`);
  const head = JSON.stringify({
    ...(req.id !== undefined ? { id: req.id } : {}),
    ...(Object.keys(req.parameters).length ? { parameters: parametersToJson(req.parameters) } : {}),
    ...(req.outputs.length ? { outputs: req.outputs.map((name) => ({ name })) } : {}),
  });
  // The head's closing brace gives way to the inputs, written as text so 64-bit integers stay exact.
  return Buffer.from(`${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"inputs":[${inputs.join(',')}]}`);
}

/** A node's REST answer (JSON, or a JSON header and binary outputs) → internal result. Checked like any input: the node is not trusted to be well formed. */
export function inferResultFromRest(json: unknown, binary: Uint8Array | undefined): InferResult {
  if (!isRecord(json)) throw invalid('the answer is not a JSON object');
  const { model_name: model, outputs } = json;
  const version = absent(json.model_version) ? undefined : json.model_version;
  const id = absent(json.id) ? undefined : json.id;
  if (typeof model !== 'string') throw invalid('the answer has no "model_name"');
  if (version !== undefined && typeof version !== 'string') throw invalid('"model_version" must be a string');
  if (id !== undefined && typeof id !== 'string') throw invalid('"id" must be a string');
  if (!Array.isArray(outputs)) throw invalid('the answer has no "outputs" array');
  return {
    model, version: version ?? '', id,
    parameters: parseParameters(json.parameters, 'parameters'),
    outputs: tensorsFromRest(outputs, binary, 'outputs', NODE_RESPONSE_LIMITS),
  };
}

/** A node's model metadata (GET /v2/models/{name}) → internal form, checked. */
export function modelMetadataFromJson(json: unknown): ModelMetadata {
  if (!isRecord(json) || typeof json.name !== 'string') throw invalid('model metadata must be an object with a "name"');
  const tensors = (value: unknown, where: string): TensorMeta[] => {
    if (absent(value)) return [];
    if (!Array.isArray(value)) throw invalid(`"${where}" must be an array`);
    return value.map((t, i) => {
      const at = `${where}[${i}]`;
      if (!isRecord(t)) throw invalid(`${at} must be an object`);
      // Metadata marks a variable dimension with -1, which a request's shape never holds (so not parseShape).
      if (!Array.isArray(t.shape)) throw invalid(`${at}: "shape" must be an array of integers ≥ -1`);
      const shape = t.shape.map((d: unknown) => {
        if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < -1) throw invalid(`${at}: shape dimensions are integers ≥ -1`);
        return d;
      });
      return { name: checkName(t.name, at, NODE_RESPONSE_LIMITS), datatype: parseDatatype(t.datatype, at), shape };
    });
  };
  const versions = json.versions ?? [];
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string')) throw invalid('"versions" must be an array of strings');
  return {
    name: json.name, versions, platform: typeof json.platform === 'string' ? json.platform : '',
    inputs: tensors(json.inputs, 'inputs'), outputs: tensors(json.outputs, 'outputs'),
    parameters: scalarParameters(json.parameters),
  };
}

/**
 * A node's model-level metadata parameters, leniently: servers put structured
 * values there too (MLServer's `headers`), and the gateway passes on only a
 * few scalar ones (pipeline.ts), so a value that is not a string, number or
 * boolean is left out rather than failing the metadata.
 */
function scalarParameters(value: unknown): Record<string, ParameterValue> {
  if (!isRecord(value)) return {};
  const scalars = Object.fromEntries(Object.entries(value).filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'));
  return parseParameters(scalars, 'parameters');
}
