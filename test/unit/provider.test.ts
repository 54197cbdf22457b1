import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError, resolveProvider, sessionOptions } from '../../src/node/provider.js';
import { MODELS } from '../helpers/cluster.js';

const model = readFileSync(join(MODELS, 'news2', '1', 'model.onnx'));

// This machine has no CUDA provider libraries (npm ci skips their download),
// so these run the real onnxruntime-node failure path.
describe('execution provider resolution', () => {
  it('cpu is used as asked', async () => {
    expect(await resolveProvider('cpu', 0, model)).toEqual({ name: 'cpu' });
  });

  it('auto falls back to CPU and says which library is missing', async () => {
    const resolved = await resolveProvider('auto', 1, model);
    expect(resolved.name).toBe('cpu');
    expect(resolved.fallbackReason).toMatch(/libonnxruntime_providers_(shared|cuda)\.so/);
    expect(resolved.fallbackReason).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it('cuda that cannot load is an error naming the missing library', async () => {
    await expect(resolveProvider('cuda', 0, model)).rejects.toThrow(ProviderError);
    await expect(resolveProvider('cuda', 0, model)).rejects.toThrow(/device 0.*libonnxruntime_providers_(shared|cuda)\.so/);
  });

  it('installed libraries but a failing CUDA session: auto falls back with onnxruntime\'s reason, cuda refuses', async () => {
    const deps = { missingLibraries: () => [], createSession: async () => { throw new Error('CUDA failure 100: no CUDA-capable device is detected'); } };
    expect((await resolveProvider('auto', 0, model, deps)).fallbackReason).toMatch(/no CUDA-capable device/);
    await expect(resolveProvider('cuda', 0, model, deps)).rejects.toThrow(/cannot be used: onnxruntime could not create a CUDA session: CUDA failure 100/);
  });

  it('auto selects CUDA on the configured device when a session can be created there', async () => {
    const seen: unknown[] = [];
    const resolved = await resolveProvider('auto', 3, model, {
      missingLibraries: () => [],
      createSession: async (_bytes, options) => {
        seen.push(options.executionProviders);
        return { release: async () => undefined };
      },
    });
    expect(resolved).toEqual({ name: 'cuda', deviceId: 3 });
    expect(seen).toEqual([[{ name: 'cuda', deviceId: 3 }]]);
    expect(sessionOptions(resolved, 2).executionProviders).toEqual([{ name: 'cuda', deviceId: 3 }]);
  });
});

describe('webgpu, asked for by name', () => {
  it('is used when a session can be created on it, with the webgpu provider in the session options', async () => {
    const seen: unknown[] = [];
    const resolved = await resolveProvider('webgpu', 0, model, {
      createSession: async (_bytes, options) => { seen.push(options.executionProviders); return { release: async () => undefined }; },
      missingLibraries: () => [],
    });
    expect(resolved).toEqual({ name: 'webgpu' });
    expect(seen).toEqual([['webgpu']]);
  });

  it('is a startup error naming the cause when no adapter exists, never a quiet fallback', async () => {
    await expect(resolveProvider('webgpu', 0, model, {
      createSession: async () => { throw new Error('Failed to get a WebGPU adapter: No supported adapters.\nmore detail'); },
      missingLibraries: () => [],
    })).rejects.toThrow(ProviderError);
  });
});
