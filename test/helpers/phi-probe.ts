import { cpSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, sha256 } from '../../models/build/onnx-graph.js';
import { MODELS } from './cluster.js';

/**
 * A test-only model that echoes its three BYTES inputs (mrn, note, patient):
 * what it returns is exactly what the node received, which is how the tests
 * show, at the node's side, whether PHI reached it. Never part of models/.
 */
export function phiProbeModel(): Uint8Array {
  const g = new GraphBuilder('phi_probe');
  for (const name of ['mrn', 'note', 'patient']) {
    g.input(name, 'STRING', ['batch', 1]);
    g.op('Identity', [name], {}, `${name}_seen`);
    g.output(`${name}_seen`, 'STRING', ['batch', 1]);
  }
  return g.encode();
}

/** A temporary repository: the real models plus the probe under each of `names` (same file; default phi-probe and phi-probe-deid). */
export function repositoryWithProbes(names: readonly string[] = ['phi-probe', 'phi-probe-deid']): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdsgate-repo-'));
  cpSync(MODELS, dir, { recursive: true });
  const bytes = phiProbeModel();
  for (const name of names) {
    mkdirSync(join(dir, name, '1'), { recursive: true });
    writeFileSync(join(dir, name, '1', 'model.onnx'), bytes);
    writeFileSync(join(dir, name, 'config.json'), JSON.stringify({
      name, platform: 'onnx_onnxv1', description: 'test-only echo of BYTES inputs', maxBatchSize: 8,
      inputs: ['mrn', 'note', 'patient'].map((n) => ({ name: n, datatype: 'BYTES', shape: [-1, 1] })),
      outputs: ['mrn', 'note', 'patient'].map((n) => ({ name: `${n}_seen`, datatype: 'BYTES', shape: [-1, 1] })),
      versions: { '1': { sha256: sha256(bytes) } },
    }));
  }
  return dir;
}
