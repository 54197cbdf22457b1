/**
 * Builds every model in the repository from committed code and data:
 *   npm run models:build              writes models/<name>/{config.json,1/model.onnx}
 *   npm run models:build -- --out DIR writes the same tree elsewhere (used by the reproducibility test)
 * The same inputs give byte-identical files, hence the same SHA-256.
 */
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildNews2, NEWS2_PARAMETERS, NEWS2_PLAUSIBLE_RANGES, NEWS2_RISK_LABELS } from './news2.js';
import { buildCxrLoadtest } from './cxr-loadtest.js';
import { buildWdbc, evaluate, loadWdbc, trainLogistic, wdbcFeatureRanges, WDBC_FEATURES, type Evaluation } from './wdbc.js';
import { sha256, writeFile } from './onnx-graph.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const WDBC_CSV = resolve(here, '../../../shared/data/wdbc/breast_cancer.csv');

interface Built { name: string; bytes: Uint8Array; config: Record<string, unknown> }

function modelConfig(name: string, bytes: Uint8Array, spec: Omit<Record<string, unknown>, 'versions'>): Record<string, unknown> {
  return { name, platform: 'onnx_onnxv1', ...spec, versions: { '1': { sha256: sha256(bytes) } } };
}

export async function buildAll(outDir: string, csvPath = WDBC_CSV): Promise<{ models: Built[]; wdbcEvaluation: Evaluation }> {
  const news2 = buildNews2();
  const cxr = buildCxrLoadtest();
  const data = loadWdbc(csvPath);
  const wdbcBytes = buildWdbc(trainLogistic(data.train));
  const wdbcEvaluation = await evaluateOnnx(wdbcBytes, data.test.map((s) => s.x), data.test.map((s) => s.malignant));

  const models: Built[] = [
    {
      name: 'news2', bytes: news2,
      config: modelConfig('news2', news2, {
        description: `NEWS2 early-warning score. vitals columns: ${NEWS2_PARAMETERS.join(', ')}`,
        maxBatchSize: 256,
        // A run of a few dozen arithmetic nodes: cheaper on the node's main thread than handed to a worker (session-pool.ts).
        inline: true,
        inputs: [{ name: 'vitals', datatype: 'FP32', shape: [-1, 7], labels: [...NEWS2_PARAMETERS], featureRanges: NEWS2_PLAUSIBLE_RANGES }],
        outputs: [
          { name: 'news2_score', datatype: 'FP32', shape: [-1, 1] },
          { name: 'subscores', datatype: 'FP32', shape: [-1, 7], labels: [...NEWS2_PARAMETERS] },
          { name: 'risk', datatype: 'INT64', shape: [-1, 1], labels: NEWS2_RISK_LABELS },
        ],
      }),
    },
    {
      name: 'wdbc-risk', bytes: wdbcBytes,
      config: modelConfig('wdbc-risk', wdbcBytes, {
        description: 'Probability that a breast fine-needle aspirate is malignant, from 30 WDBC nuclear features',
        maxBatchSize: 256,
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30], labels: WDBC_FEATURES, featureRanges: wdbcFeatureRanges(data.train) }],
        outputs: [{ name: 'malignant_probability', datatype: 'FP32', shape: [-1, 1] }],
      }),
    },
    {
      name: 'cxr-loadtest', bytes: cxr,
      config: modelConfig('cxr-loadtest', cxr, {
        description: 'UNTRAINED convolutional load-test model (chest-X-ray shaped input). Not a diagnostic model.',
        maxBatchSize: 32,
        inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 224, 224] }],
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 2], labels: ['untrained_class_0', 'untrained_class_1'] }],
      }),
    },
  ];
  for (const m of models) {
    writeFile(join(outDir, m.name, '1', 'model.onnx'), m.bytes);
    writeFile(join(outDir, m.name, 'config.json'), `${JSON.stringify(m.config, null, 2)}\n`);
  }
  updateCardEvaluation(join(outDir, 'wdbc-risk', 'MODEL_CARD.md'), evaluationMarkdown(wdbcEvaluation, data.train.length));
  return { models, wdbcEvaluation };
}

/** The card's numbers come from running the built ONNX file, not the training code. */
async function evaluateOnnx(bytes: Uint8Array, rows: number[][], labels: Array<0 | 1>): Promise<Evaluation> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 30]);
  const out = await session.run({ features: input });
  const probs = Array.from(out.malignant_probability!.data as Float32Array);
  await session.release();
  return evaluate(probs, labels);
}

const BEGIN = '<!-- evaluation:begin (written by npm run models:build) -->';
const END = '<!-- evaluation:end -->';

/** Rewrites the card's evaluation section in place; the rest of the card is hand-written. */
function updateCardEvaluation(cardPath: string, section: string): void {
  const card = existsSync(cardPath) ? readFileSync(cardPath, 'utf8') : `${BEGIN}\n${END}\n`;
  const start = card.indexOf(BEGIN), end = card.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${cardPath}: evaluation markers missing`);
  writeFile(cardPath, `${card.slice(0, start + BEGIN.length)}\n${section}${card.slice(end)}`);
}

function evaluationMarkdown(e: Evaluation, nTrain: number): string {
  const f = (x: number) => x.toFixed(3);
  return [
    `Training set: ${nTrain} samples. Held-out test set: ${e.n} samples (${e.positives} malignant), stratified, seed 569.`,
    '',
    '| metric | value |',
    '| --- | --- |',
    `| ROC AUC | ${f(e.auc)} |`,
    `| accuracy (threshold 0.5) | ${f(e.accuracy)} |`,
    `| sensitivity (malignant) | ${f(e.sensitivity)} |`,
    `| specificity (benign) | ${f(e.specificity)} |`,
    `| Brier score | ${f(e.brier)} |`,
    `| expected calibration error (5 bins) | ${f(e.ece)} |`,
    '',
    '### Calibration on the held-out set',
    '',
    '| predicted probability | n | mean predicted | observed malignant rate |',
    '| --- | --- | --- | --- |',
    ...e.bins.map((b) => `| ${b.range} | ${b.n} | ${b.n ? f(b.meanPredicted) : '–'} | ${b.n ? f(b.observed) : '–'} |`),
    '',
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outFlag = process.argv.indexOf('--out');
  const outDir = resolve(outFlag > 0 ? process.argv[outFlag + 1]! : resolve(here, '..'));
  const { models, wdbcEvaluation } = await buildAll(outDir);
  for (const m of models) console.log(`${m.name.padEnd(14)} ${sha256(m.bytes)}  ${m.bytes.byteLength} bytes`);
  console.log(`wdbc-risk held-out AUC ${wdbcEvaluation.auc.toFixed(3)}, accuracy ${wdbcEvaluation.accuracy.toFixed(3)}, Brier ${wdbcEvaluation.brier.toFixed(3)}`);
}
