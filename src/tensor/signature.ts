import { invalid, quote, shapeText } from '../errors.js';
import type { TensorSpec } from '../config/schema.js';
import type { Tensor } from './datatypes.js';

export interface ModelSignature {
  name: string;
  maxBatchSize: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/**
 * Checks request tensors against a model's declared inputs and returns them in
 * the model's input order. Every mismatch is a client error that says exactly
 * what was wrong.
 */
export function matchInputs(model: ModelSignature, tensors: Tensor[]): Tensor[] {
  const byName = new Map<string, Tensor>();
  const expectedNames = model.inputs.map((s) => s.name).join(', ');
  for (const t of tensors) {
    if (byName.has(t.name)) throw invalid(`input ${quote(t.name)} is given more than once`);
    if (!model.inputs.some((s) => s.name === t.name)) {
      throw invalid(`model ${quote(model.name)} has no input ${quote(t.name)}; its inputs are: ${expectedNames}`);
    }
    byName.set(t.name, t);
  }
  return model.inputs.map((spec) => {
    const t = byName.get(spec.name);
    if (!t) throw invalid(`model ${quote(model.name)} needs input ${quote(spec.name)} (${spec.datatype} ${shapeText(spec.shape)}), which is missing`);
    if (t.datatype !== spec.datatype) {
      throw invalid(`input ${quote(spec.name)} has datatype ${t.datatype}, model ${quote(model.name)} expects ${spec.datatype}`);
    }
    checkShape(spec, t.shape, model);
    checkValues(spec, t);
    return t;
  });
}

/**
 * Floating-point values must be finite unless the model says otherwise, and
 * every value must lie in the plausible range the model's config (and card)
 * declares. The first offending element is named with its position and the
 * range, so a caller can find the bad reading.
 */
function checkValues(spec: TensorSpec, t: Tensor): void {
  const data = t.data;
  if (Array.isArray(data) || data instanceof BigInt64Array || data instanceof BigUint64Array) return;
  const isFloat = t.datatype === 'FP32' || t.datatype === 'FP64';
  const checkFinite = isFloat && !spec.allowNonFinite;
  const ranges = spec.featureRanges;
  if (!checkFinite && !spec.range && !ranges) return;
  const width = t.shape[t.shape.length - 1] ?? 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (checkFinite && !Number.isFinite(v)) {
      throw invalid(`input ${quote(spec.name)} element ${elementName(spec, i, width)} is ${v}; this model accepts finite numbers only`);
    }
    const range = ranges ? ranges[i % width]! : spec.range;
    if (range && !(v >= range.min && v <= range.max)) {
      throw invalid(`input ${quote(spec.name)} element ${elementName(spec, i, width)} is ${v}, outside the plausible range [${range.min}, ${range.max}] this model declares`);
    }
  }
}

function elementName(spec: TensorSpec, index: number, width: number): string {
  const row = Math.floor(index / width), column = index % width;
  const label = spec.labels?.[column];
  return `[${row}, ${column}]${label ? ` (${label})` : ''}`;
}

function checkShape(spec: TensorSpec, shape: number[], model: ModelSignature): void {
  const wanted = JSON.stringify(spec.shape);
  if (shape.length !== spec.shape.length) {
    throw invalid(`input ${quote(spec.name)} has shape ${shapeText(shape)}, model ${quote(model.name)} expects rank ${spec.shape.length} ${wanted}`);
  }
  spec.shape.forEach((dim, i) => {
    if (dim !== -1 && shape[i] !== dim) {
      throw invalid(`input ${quote(spec.name)} has shape ${shapeText(shape)}, model ${quote(model.name)} expects ${wanted} (dimension ${i} must be ${dim})`);
    }
  });
  if (spec.shape[0] === -1) {
    const batch = shape[0]!;
    if (batch === 0) throw invalid(`input ${quote(spec.name)} has an empty batch`);
    if (batch > model.maxBatchSize) {
      throw invalid(`input ${quote(spec.name)} has batch size ${batch}, above model ${quote(model.name)} maximum of ${model.maxBatchSize}`);
    }
  }
}

/** Requested output names must exist; none requested means all outputs. */
export function matchOutputs(model: ModelSignature, requested: string[] | undefined): string[] {
  const all = model.outputs.map((o) => o.name);
  if (!requested || requested.length === 0) return all;
  for (const name of requested) {
    if (!all.includes(name)) throw invalid(`model ${quote(model.name)} has no output ${quote(name)}; its outputs are: ${all.join(', ')}`);
  }
  return [...new Set(requested)];
}
