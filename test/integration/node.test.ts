import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { devNodeConfig } from '../../src/cli/dev-config.js';
import { MODELS, jsonLogs, grpcCall, grpcClient, httpsCall, makeMaterial, runCli, startProcess, stopProcess, type Material, type Proc } from '../helpers/cluster.js';

let material: Material;
let node: Proc;
let repo: string;

beforeAll(async () => {
  material = await makeMaterial();
  // A repository where news2's pinned hash no longer matches its file (a swapped or corrupted model).
  repo = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
  cpSync(MODELS, repo, { recursive: true });
  const configFile = join(repo, 'news2', 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.versions['1'].sha256 = '0'.repeat(64);
  writeFileSync(configFile, JSON.stringify(config));
  node = await startProcess('node', devNodeConfig({ pki: material.pki, index: 0, modelRepository: repo, executionProvider: 'auto' }), material.dir, 'node-hash');
});
afterAll(async () => { if (node) await stopProcess(node); });

describe('inference node', () => {
  it('refuses a model whose file does not match its pinned SHA-256, and reports it not ready', async () => {
    const client = grpcClient(node.ports.grpc!, material.pki.ca, material.pki.gatewayClient, 'node-0.cdsgate.local');
    expect((await grpcCall(client, 'ModelReady', { name: 'news2' })).ready).toBe(false);
    expect((await grpcCall(client, 'ModelReady', { name: 'wdbc-risk' })).ready).toBe(true);
    expect((await grpcCall(client, 'ServerReady', {})).ready).toBe(false);
    await expect(grpcCall(client, 'ModelInfer', {
      model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7] } }],
    })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/SHA-256 [0-9a-f]{64} does not match the pinned 0{64}/) });
    const meta = await grpcCall(client, 'ModelMetadata', { name: 'news2' });
    expect(meta.parameters.load_error.string_param).toMatch(/does not match the pinned/);
    client.close();
    const log = jsonLogs(node).find((l) => l.msg === 'model refused');
    expect(log?.model).toBe('news2');
  });

  it('writes only structured log lines (no native ORT noise from the CUDA probe)', () => {
    expect(node.logs.length).toBeGreaterThan(0);
    expect(jsonLogs(node)).toHaveLength(node.logs.length);
  });

  it('records and reports the execution provider it actually uses (auto → cpu here, with the reason)', async () => {
    const client = grpcClient(node.ports.grpc!, material.pki.ca, material.pki.gatewayClient, 'node-0.cdsgate.local');
    const meta = await grpcCall(client, 'ServerMetadata', {});
    client.close();
    expect(meta.parameters.execution_provider.string_param).toBe('cpu');
    expect(meta.parameters.execution_provider_fallback.string_param).toMatch(/libonnxruntime_providers_(shared|cuda)\.so/);
    const metrics = await fetch(`http://127.0.0.1:${node.ports.admin}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/cdsgate_node_execution_provider\{provider="cpu",device="",requested="auto",node="node-0"\} 1/);
    expect(metrics).toMatch(/cdsgate_node_model_ready\{model="news2",version="1",node="node-0"\} 0/);
    const started = jsonLogs(node).find((l) => l.msg === 'execution provider selected');
    expect(started?.executionProvider).toBe('cpu');
  });

  it('REST on the node answers the gateway identity only', async () => {
    const ok = await httpsCall(node.ports.rest!, '/v2/models/wdbc-risk/ready', { ca: material.pki.ca, identity: material.pki.gatewayClient });
    expect(ok.status).toBe(200);
    const denied = await httpsCall(node.ports.rest!, '/v2/models/wdbc-risk/ready', { ca: material.pki.ca, identity: material.pki.apps.ehr });
    expect(denied.status).toBe(403);
  });

  it('REST server metadata lists binary_tensor_data, so the gateway sends it binary tensors rather than JSON', async () => {
    const metadata = await httpsCall(node.ports.rest!, '/v2', { ca: material.pki.ca, identity: material.pki.gatewayClient });
    expect(metadata.status).toBe(200);
    expect(JSON.parse(metadata.body).extensions).toContain('binary_tensor_data');
  });

  it('executionProvider "cuda" without the provider library is a startup error naming it', () => {
    const file = join(material.dir, 'node-cuda.json');
    writeFileSync(file, JSON.stringify(devNodeConfig({ pki: material.pki, index: 1, modelRepository: MODELS, executionProvider: 'cuda' })));
    const run = runCli(['node', '--config', file]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/executionProvider "cuda" \(device 1\) cannot be used: missing libonnxruntime_providers_(shared|cuda)\.so/);
  });

  it('executionProvider "webgpu" runs on WebGPU where an adapter exists, and is a startup error naming the cause where none does', async () => {
    const config = devNodeConfig({ pki: material.pki, index: 2, modelRepository: MODELS, executionProvider: 'webgpu' });
    const file = join(material.dir, 'node-webgpu.json');
    writeFileSync(file, JSON.stringify(config));
    let started: Awaited<ReturnType<typeof startProcess>> | undefined;
    try {
      started = await startProcess('node', config, material.dir, 'node-webgpu');
    } catch {
      // No adapter on this host (no Vulkan driver): the node must refuse to start, saying why — never fall back quietly.
      const run = runCli(['node', '--config', file]);
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/executionProvider "webgpu" cannot be used: onnxruntime could not create a WebGPU session/);
      return;
    }
    try {
      expect(started.logs.join('\n')).toMatch(/"executionProvider":"webgpu"/);
    } finally {
      await stopProcess(started);
    }
  });
});
