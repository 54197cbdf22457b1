import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelConfig } from '../config/load.js';
import type { ModelConfig } from '../config/schema.js';

export interface LoadedModel {
  status: 'loaded';
  name: string;
  version: string;
  config: ModelConfig;
  sha256: string;
  /** The verified bytes; workers build sessions from these, never re-reading the file. */
  bytes: SharedArrayBuffer;
}

export interface FailedModel {
  status: 'failed';
  name: string;
  version?: string;
  config?: ModelConfig;
  reason: string;
}

export type RepositoryEntry = LoadedModel | FailedModel;

/**
 * Reads models/<name>/config.json and the newest declared version's
 * <version>/model.onnx, and refuses a file whose SHA-256 differs from the
 * config. A refused model stays in the list as failed, so the node reports it
 * not ready instead of silently serving fewer models.
 */
export function loadRepository(dir: string, only?: string[]): RepositoryEntry[] {
  if (!existsSync(dir)) throw new Error(`model repository ${dir} does not exist`);
  const names = only ?? readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'config.json')))
    .map((d) => d.name)
    .sort();
  return names.map((name) => loadOne(dir, name));
}

function loadOne(dir: string, name: string): RepositoryEntry {
  let config: ModelConfig;
  try {
    config = loadModelConfig(join(dir, name, 'config.json'));
  } catch (err) {
    return { status: 'failed', name, reason: (err as Error).message };
  }
  if (config.name !== name) return { status: 'failed', name, config, reason: `config.json names model "${config.name}" but its folder is "${name}"` };
  const version = Object.keys(config.versions).sort((a, b) => Number(b) - Number(a))[0]!;
  const expected = config.versions[version]!.sha256;
  const file = join(dir, name, version, 'model.onnx');
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    return { status: 'failed', name, version, config, reason: `cannot read ${file}: ${(err as Error).message}` };
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expected) {
    return { status: 'failed', name, version, config, reason: `refused ${file}: SHA-256 ${actual} does not match the pinned ${expected}` };
  }
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  return { status: 'loaded', name, version, config, sha256: actual, bytes: shared };
}
