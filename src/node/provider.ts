import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ProviderError } from './provider-error.js';

export type ProviderRequest = 'auto' | 'cuda' | 'webgpu' | 'cpu';

/**
 * What `auto` tries, in order. WebGPU is not in it: on a host without a GPU
 * adapter, Dawn probes Vulkan and prints to stderr on every start, and CUDA
 * is what a GPU node is for. Ask for `webgpu` by name.
 */
export const AUTO_ORDER = ['cuda', 'cpu'] as const;

export interface ResolvedProvider {
  /** What sessions actually run on. */
  name: 'cuda' | 'webgpu' | 'cpu';
  deviceId?: number;
  /** Why `auto` fell back to CPU, when it did. */
  fallbackReason?: string;
}

export { ProviderError };

/** The ORT session options for a resolved provider; one place, used by the probe and by every worker. */
export function sessionOptions(provider: ResolvedProvider, intraOpThreads: number): ort.InferenceSession.SessionOptions {
  const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
    provider.name === 'cuda' ? [{ name: 'cuda', deviceId: provider.deviceId ?? 0 }] : provider.name === 'webgpu' ? ['webgpu'] : ['cpu'];
  return { executionProviders, intraOpNumThreads: intraOpThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
}

/** A session of a model's verified bytes. ORT accepts only ArrayBuffer-backed arrays: slice() copies out of the shared buffer. */
export function openSession(bytes: ArrayBufferLike, provider: ResolvedProvider, intraOpThreads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(new Uint8Array(bytes).slice(), sessionOptions(provider, intraOpThreads));
}

type CreateSession = (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => Promise<{ release(): Promise<void> }>;

export interface ProbeDeps {
  createSession: CreateSession;
  /** CUDA provider libraries missing beside onnxruntime-node's binding. */
  missingLibraries: () => string[];
}

const realDeps: ProbeDeps = {
  createSession: (bytes, options) => ort.InferenceSession.create(bytes, options),
  missingLibraries: () => CUDA_PROVIDER_LIBRARIES.filter((lib) => !existsSync(join(ortBinaryDir(), lib))),
};

/**
 * onnxruntime-node has no silent fallback and no API that says which provider
 * a session landed on: creating a CUDA session without the provider library
 * rejects. So we decide once, with a real model, and record the outcome:
 * `cuda` must work or startup fails naming what is missing; `auto` tries CUDA
 * on the configured device and falls back to CPU, saying why.
 * When the provider libraries are not even installed we skip the native
 * attempt, which would only print ORT's own multi-line error to stderr.
 */
export async function resolveProvider(
  requested: ProviderRequest, deviceId: number, probeModel: Uint8Array, deps: ProbeDeps = realDeps,
): Promise<ResolvedProvider> {
  if (requested === 'cpu') return { name: 'cpu' };
  if (requested === 'webgpu') {
    // onnxruntime-node bundles the WebGPU provider (Dawn); it needs a GPU adapter (Vulkan on Linux, or Mesa's lavapipe on a CPU).
    const webgpu: ResolvedProvider = { name: 'webgpu' };
    try {
      const session = await deps.createSession(probeModel, sessionOptions(webgpu, 1));
      await session.release();
      return webgpu;
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).trim().split('\n')[0]!.slice(0, 300);
      throw new ProviderError(`executionProvider "webgpu" cannot be used: onnxruntime could not create a WebGPU session: ${message} (it needs a Vulkan driver with a GPU adapter: libvulkan1 and a Mesa or vendor driver)`);
    }
  }
  // onnxruntime moved its Linux GPU builds to CUDA 13 (1.27 deprecated CUDA 12); the install manifest kept the name cuda12.
  const hint = 'a GPU host needs the NVIDIA driver (580 or later), the CUDA 13 runtime and cuDNN 9 for CUDA 13, and the provider installed with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --allow-scripts=onnxruntime-node`; `cdsgate gpu-check` names any library the provider cannot load (README, "GPU hosts")';
  let reason: string;
  const missing = deps.missingLibraries();
  if (missing.length > 0) {
    reason = `missing ${missing.join(' and ')} in ${ortBinaryDir()}; ${hint}`;
  } else {
    const cuda: ResolvedProvider = { name: 'cuda', deviceId };
    try {
      const session = await deps.createSession(probeModel, sessionOptions(cuda, 1));
      await session.release();
      return cuda;
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).trim();
      reason = `onnxruntime could not create a CUDA session: ${message} (the provider libraries are installed: check the CUDA runtime, cuDNN and the device id); ${hint}`;
    }
  }
  if (requested === 'cuda') throw new ProviderError(`executionProvider "cuda" (device ${deviceId}) cannot be used: ${reason}`);
  return { name: 'cpu', fallbackReason: reason };
}

/** The libraries the CUDA provider needs beside onnxruntime-node's binding (Linux names; .dll on Windows). */
export const CUDA_PROVIDER_LIBRARIES = process.platform === 'win32'
  ? ['onnxruntime_providers_shared.dll', 'onnxruntime_providers_cuda.dll']
  : ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

export function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

