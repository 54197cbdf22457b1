import { mkdtempSync, readFileSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildAll } from '../../models/build/build-all.js';
import { loadRepository } from '../../src/node/repository.js';
import { AGGREGATE_CASES, CHART_EDGES, edgeRows } from '../helpers/news2-chart.js';
import { MODELS } from '../helpers/cluster.js';

const committedSha = (name: string) => JSON.parse(readFileSync(join(MODELS, name, 'config.json'), 'utf8')).versions['1'].sha256;

describe('model repository', () => {
  it('build scripts reproduce the committed files byte for byte', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cdsgate-models-'));
    cpSync(join(MODELS, 'wdbc-risk', 'MODEL_CARD.md'), join(out, 'wdbc-risk', 'MODEL_CARD.md'), { recursive: true });
    const { models, wdbcEvaluation } = await buildAll(out);
    for (const m of models) {
      expect(JSON.parse(readFileSync(join(out, m.name, 'config.json'), 'utf8')).versions['1'].sha256, m.name).toBe(committedSha(m.name));
      expect(readFileSync(join(out, m.name, '1', 'model.onnx')).equals(readFileSync(join(MODELS, m.name, '1', 'model.onnx'))), m.name).toBe(true);
    }
    expect(wdbcEvaluation.auc).toBeGreaterThan(0.95);
    expect(readFileSync(join(out, 'wdbc-risk', 'MODEL_CARD.md'), 'utf8')).toBe(readFileSync(join(MODELS, 'wdbc-risk', 'MODEL_CARD.md'), 'utf8'));
  });

  it('loads every committed model with a matching hash', () => {
    const entries = loadRepository(MODELS);
    expect(entries.map((e) => [e.name, e.status])).toEqual([['cxr-loadtest', 'loaded'], ['news2', 'loaded'], ['wdbc-risk', 'loaded']]);
  });

  it('refuses a model file whose SHA-256 differs from its config', () => {
    const repo = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
    cpSync(join(MODELS, 'news2'), join(repo, 'news2'), { recursive: true });
    const file = join(repo, 'news2', '1', 'model.onnx');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(file, bytes);
    const [entry] = loadRepository(repo);
    expect(entry!.status).toBe('failed');
    expect((entry as { reason: string }).reason).toMatch(/SHA-256 [0-9a-f]{64} does not match the pinned [0-9a-f]{64}/);
  });
});

describe('NEWS2 graph against the published chart (run directly with onnxruntime)', () => {
  it('scores every band edge as the chart does', async () => {
    const session = await ort.InferenceSession.create(join(MODELS, 'news2', '1', 'model.onnx'));
    const rows = edgeRows();
    const out = await session.run({ vitals: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 7]) });
    const sub = out.subscores!.data as Float32Array;
    CHART_EDGES.forEach(({ param, label, value, score }, i) => {
      expect(sub[i * 7 + param], `${label} ${value}`).toBe(score);
      expect((out.news2_score!.data as Float32Array)[i], `${label} ${value} total`).toBe(score);
    });
  });

  it('bands the aggregate and single red scores', async () => {
    const session = await ort.InferenceSession.create(join(MODELS, 'news2', '1', 'model.onnx'));
    const out = await session.run({ vitals: new ort.Tensor('float32', Float32Array.from(AGGREGATE_CASES.flatMap((c) => c.vitals)), [AGGREGATE_CASES.length, 7]) });
    AGGREGATE_CASES.forEach((c, i) => {
      expect((out.news2_score!.data as Float32Array)[i], c.why).toBe(c.total);
      expect(Number((out.risk!.data as BigInt64Array)[i]), c.why).toBe(c.risk);
    });
  });
});

describe('news2 is exact on any execution provider', () => {
  it('reads each vital with a Gather, never through a MatMul (which a GPU may run in TF32)', async () => {
    const onnxProto = (await import('onnx-proto')).default;
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(join(MODELS, 'news2', '1', 'model.onnx')));
    const readers = model.graph!.node!.filter((n) => n.input!.includes('vitals')).map((n) => n.opType);
    expect(readers).toEqual(['Gather']);
  });

  it('an off-grid vital just past a band edge is scored in the next band', async () => {
    const session = await ort.InferenceSession.create(join(MODELS, 'news2', '1', 'model.onnx'), { executionProviders: ['cpu'] });
    const row = (temp: number) => [16, 97, 0, 120, 70, 0, temp];
    const out = await session.run({ vitals: new ort.Tensor('float32', Float32Array.from([...row(38.0), ...row(38.01), ...row(35.0), ...row(35.01)]), [4, 7]) });
    const temperature = Array.from(out.subscores!.data as Float32Array).filter((_, i) => i % 7 === 6);
    expect(temperature).toEqual([0, 1, 3, 1]);
    await session.release();
  });
});
