import { invalid, quote } from '../errors.js';
import type { TensorLimits } from '../tensor/datatypes.js';
import type { ParameterValue } from './types.js';

/** Longest request id and string parameter value the doors accept, in characters. */
export const MAX_ID_LENGTH = 256;
export const MAX_PARAMETER_VALUE_LENGTH = 1024;
/** Longest model version a caller may name. Versions are short labels ("1", "2026-03"); a longer one is refused before it reaches a node's URL or log. */
export const MAX_VERSION_LENGTH = 64;

export function checkModelVersion(version: string | undefined): void {
  if (version !== undefined && version.length > MAX_VERSION_LENGTH) throw invalid(`the model version is ${version.length} characters long; this server accepts at most ${MAX_VERSION_LENGTH}`);
}

interface RequestOutline {
  id?: string;
  parameters: Record<string, ParameterValue>;
  inputs: readonly unknown[];
  outputs: readonly string[];
}

/**
 * The request-level limits every door applies before it reads tensor data:
 * how many inputs, outputs and parameters, and how long an id, a parameter
 * name and a string parameter may be. Without them a caller could make a
 * node, a log or an error message carry megabytes it chose.
 */
export function checkRequestShape(req: RequestOutline, limits: TensorLimits): void {
  if (req.id !== undefined && req.id.length > MAX_ID_LENGTH) throw invalid(`"id" is ${req.id.length} characters long; this server accepts at most ${MAX_ID_LENGTH}`);
  for (const [what, n] of [['inputs', req.inputs.length], ['outputs', req.outputs.length], ['parameters', Object.keys(req.parameters).length]] as const) {
    if (n > limits.maxTensors) throw invalid(`the request has ${n} ${what}; this server accepts at most ${limits.maxTensors}`);
  }
  for (const [key, value] of Object.entries(req.parameters)) {
    if (key.length === 0 || key.length > limits.maxNameLength) throw invalid(`parameter name ${quote(key)} must be 1 to ${limits.maxNameLength} characters long`);
    if (typeof value === 'string' && value.length > MAX_PARAMETER_VALUE_LENGTH) {
      throw invalid(`parameter ${quote(key)} is ${value.length} characters long; this server accepts at most ${MAX_PARAMETER_VALUE_LENGTH}`);
    }
  }
}
