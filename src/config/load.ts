import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { z } from 'zod';
import { gatewaySchema, nodeSchema, modelConfigSchema, type GatewayConfig, type NodeConfig, type ModelConfig } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function formatIssues(file: string, error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    return `  ${key}: ${issue.message}`;
  });
  return `invalid configuration in ${file}:\n${lines.join('\n')}`;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`configuration file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseWith<S extends z.ZodType>(schema: S, file: string, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(formatIssues(file, result.error));
  return result.data;
}

export function parseGatewayConfig(value: unknown, baseDir: string, label = '<inline>'): GatewayConfig {
  return parseWith(gatewaySchema(baseDir), label, value);
}

export function parseNodeConfig(value: unknown, baseDir: string, label = '<inline>'): NodeConfig {
  return parseWith(nodeSchema(baseDir), label, value);
}

export function loadGatewayConfig(file: string): GatewayConfig {
  const path = resolve(file);
  return parseGatewayConfig(readJson(path), dirname(path), path);
}

export function loadNodeConfig(file: string): NodeConfig {
  const path = resolve(file);
  return parseNodeConfig(readJson(path), dirname(path), path);
}

export function loadModelConfig(file: string): ModelConfig {
  const path = resolve(file);
  return parseWith(modelConfigSchema, path, readJson(path));
}
