import { invalid } from '../errors.js';
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
    if (byName.has(t.name)) throw invalid(`input '${t.name}' is given more than once`);
    if (!model.inputs.some((s) => s.name === t.name)) {
      throw invalid(`model '${model.name}' has no input '${t.name}'; its inputs are: ${expectedNames}`);
    }
    byName.set(t.name, t);
  }
  return model.inputs.map((spec) => {
    const t = byName.get(spec.name);
    if (!t) throw invalid(`model '${model.name}' needs input '${spec.name}' (${spec.datatype} ${JSON.stringify(spec.shape)}), which is missing`);
    if (t.datatype !== spec.datatype) {
      throw invalid(`input '${spec.name}' has datatype ${t.datatype}, model '${model.name}' expects ${spec.datatype}`);
    }
    checkShape(spec, t.shape, model);
    return t;
  });
}

function checkShape(spec: TensorSpec, shape: number[], model: ModelSignature): void {
  const wanted = JSON.stringify(spec.shape);
  if (shape.length !== spec.shape.length) {
    throw invalid(`input '${spec.name}' has shape ${JSON.stringify(shape)}, model '${model.name}' expects rank ${spec.shape.length} ${wanted}`);
  }
  spec.shape.forEach((dim, i) => {
    if (dim !== -1 && shape[i] !== dim) {
      throw invalid(`input '${spec.name}' has shape ${JSON.stringify(shape)}, model '${model.name}' expects ${wanted} (dimension ${i} must be ${dim})`);
    }
  });
  if (spec.shape[0] === -1) {
    const batch = shape[0]!;
    if (batch === 0) throw invalid(`input '${spec.name}' has an empty batch`);
    if (batch > model.maxBatchSize) {
      throw invalid(`input '${spec.name}' has batch size ${batch}, above model '${model.name}' maximum of ${model.maxBatchSize}`);
    }
  }
}

/** Requested output names must exist; none requested means all outputs. */
export function matchOutputs(model: ModelSignature, requested: string[] | undefined): string[] {
  const all = model.outputs.map((o) => o.name);
  if (!requested || requested.length === 0) return all;
  for (const name of requested) {
    if (!all.includes(name)) throw invalid(`model '${model.name}' has no output '${name}'; its outputs are: ${all.join(', ')}`);
  }
  return [...new Set(requested)];
}
