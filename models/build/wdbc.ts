/**
 * Breast-cancer (WDBC) malignancy risk: standardisation + logistic regression,
 * trained by deterministic full-batch gradient descent on a seeded, stratified
 * 80/20 split of ../shared/data/wdbc/breast_cancer.csv (CC BY 4.0).
 */
import { readFileSync } from 'node:fs';
import { GraphBuilder, mulberry32 } from './onnx-graph.js';

export const WDBC_FEATURES = [
  'mean radius', 'mean texture', 'mean perimeter', 'mean area', 'mean smoothness', 'mean compactness',
  'mean concavity', 'mean concave points', 'mean symmetry', 'mean fractal dimension',
  'radius error', 'texture error', 'perimeter error', 'area error', 'smoothness error', 'compactness error',
  'concavity error', 'concave points error', 'symmetry error', 'fractal dimension error',
  'worst radius', 'worst texture', 'worst perimeter', 'worst area', 'worst smoothness', 'worst compactness',
  'worst concavity', 'worst concave points', 'worst symmetry', 'worst fractal dimension',
];

export interface Sample { x: number[]; malignant: 0 | 1 }
export interface WdbcData { train: Sample[]; test: Sample[] }

export function loadWdbc(csvPath: string): WdbcData {
  const lines = readFileSync(csvPath, 'utf8').trim().split('\n').slice(1); // first line: "569,30,malignant,benign"
  const samples: Sample[] = lines.map((line) => {
    const cells = line.split(',').map(Number);
    const cls = cells[30];
    if (cells.length !== 31 || cells.some(Number.isNaN) || (cls !== 0 && cls !== 1)) throw new Error(`bad WDBC row: ${line}`);
    return { x: cells.slice(0, 30), malignant: cls === 0 ? 1 : 0 }; // class 0 = malignant in this file
  });
  const random = mulberry32(569);
  const split: WdbcData = { train: [], test: [] };
  for (const label of [1, 0] as const) {
    const group = samples.filter((s) => s.malignant === label);
    for (let i = group.length - 1; i > 0; i--) { // Fisher–Yates, seeded
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j]!, group[i]!];
    }
    const nTest = Math.round(group.length * 0.2);
    split.test.push(...group.slice(0, nTest));
    split.train.push(...group.slice(nTest));
  }
  return split;
}

export interface LogisticModel { mean: number[]; scale: number[]; weights: number[]; bias: number }

export function trainLogistic(train: Sample[], { iterations = 4000, learningRate = 0.3, l2 = 0.01 } = {}): LogisticModel {
  const d = 30, n = train.length;
  const mean = Array.from({ length: d }, (_, j) => train.reduce((s, t) => s + t.x[j]!, 0) / n);
  const scale = Array.from({ length: d }, (_, j) => 1 / Math.sqrt(train.reduce((s, t) => s + (t.x[j]! - mean[j]!) ** 2, 0) / n));
  const z = train.map((t) => t.x.map((v, j) => (v - mean[j]!) * scale[j]!));
  const w = new Array<number>(d).fill(0);
  let b = 0;
  for (let it = 0; it < iterations; it++) {
    const grad = new Array<number>(d).fill(0);
    let gradB = 0;
    for (let i = 0; i < n; i++) {
      const row = z[i]!;
      const p = 1 / (1 + Math.exp(-(row.reduce((s, v, j) => s + v * w[j]!, b))));
      const err = p - train[i]!.malignant;
      for (let j = 0; j < d; j++) grad[j]! += err * row[j]!;
      gradB += err;
    }
    for (let j = 0; j < d; j++) w[j] = w[j]! - learningRate * (grad[j]! / n + l2 * w[j]!);
    b -= learningRate * (gradB / n);
  }
  return { mean, scale, weights: w, bias: b };
}

export function buildWdbc(m: LogisticModel): Uint8Array {
  const g = new GraphBuilder('wdbc_risk');
  const x = g.input('features', 'FLOAT', ['batch', 30]);
  const centred = g.op('Sub', [x, g.floats('mean', [30], m.mean)]);
  const standard = g.op('Mul', [centred, g.floats('scale', [30], m.scale)]);
  const logit = g.op('Add', [g.op('MatMul', [standard, g.floats('weights', [30, 1], m.weights)]), g.floats('bias', [1], [m.bias])]);
  g.op('Sigmoid', [logit], {}, 'malignant_probability');
  g.output('malignant_probability', 'FLOAT', ['batch', 1]);
  return g.encode();
}

export interface Evaluation {
  n: number; positives: number; auc: number; accuracy: number; sensitivity: number; specificity: number;
  brier: number; ece: number; bins: Array<{ range: string; n: number; meanPredicted: number; observed: number }>;
}

export function evaluate(probabilities: number[], labels: Array<0 | 1>): Evaluation {
  const n = labels.length;
  const pos = probabilities.filter((_, i) => labels[i] === 1);
  const neg = probabilities.filter((_, i) => labels[i] === 0);
  let wins = 0;
  for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
  const predicted = probabilities.map((p) => (p >= 0.5 ? 1 : 0));
  const tp = predicted.filter((p, i) => p === 1 && labels[i] === 1).length;
  const tn = predicted.filter((p, i) => p === 0 && labels[i] === 0).length;
  const bins = [0, 0.2, 0.4, 0.6, 0.8].map((lo) => {
    const hi = lo + 0.2;
    const idx = probabilities.map((p, i) => (p >= lo && (p < hi || (hi >= 1 && p <= 1)) ? i : -1)).filter((i) => i >= 0);
    const meanPredicted = idx.length ? idx.reduce((s, i) => s + probabilities[i]!, 0) / idx.length : 0;
    const observed = idx.length ? idx.reduce((s, i) => s + labels[i]!, 0) / idx.length : 0;
    return { range: `${lo.toFixed(1)}–${hi.toFixed(1)}`, n: idx.length, meanPredicted, observed };
  });
  return {
    n, positives: pos.length,
    auc: wins / (pos.length * neg.length),
    accuracy: (tp + tn) / n,
    sensitivity: tp / pos.length,
    specificity: tn / neg.length,
    brier: probabilities.reduce((s, p, i) => s + (p - labels[i]!) ** 2, 0) / n,
    ece: bins.reduce((s, b) => s + (b.n / n) * Math.abs(b.meanPredicted - b.observed), 0),
    bins,
  };
}

/**
 * The plausible range of each feature: the training data's range widened by
 * half its width on each side, never below zero (every WDBC feature is a
 * size, a ratio or a count). Values outside it are not measurements this
 * model has any basis to score. Rounded to 4 significant digits so the
 * config reads plainly.
 */
export function wdbcFeatureRanges(train: Sample[]): Array<{ min: number; max: number }> {
  return WDBC_FEATURES.map((_, j) => {
    const column = train.map((s) => s.x[j]!);
    const lo = Math.min(...column), hi = Math.max(...column), margin = (hi - lo) / 2;
    return { min: Number(Math.max(0, lo - margin).toPrecision(4)), max: Number((hi + margin).toPrecision(4)) };
  });
}
