/**
 * NEWS2 (Royal College of Physicians, 2017) as an ONNX graph.
 * Each parameter's chart row is a base score plus steps at band edges:
 *   subscore = base + Σ delta · [value > edge]
 * which reproduces the published bands exactly for the chart's own values
 * (integers; temperature to one decimal).
 */
import { GraphBuilder } from './onnx-graph.js';

export const NEWS2_PARAMETERS = [
  'respiration_rate', 'spo2_scale1', 'supplemental_oxygen', 'systolic_bp', 'pulse', 'consciousness_cvpu', 'temperature',
] as const;

/**
 * What a bedside observation can physically be, per column (units as the
 * chart: breaths/min, %, 0/1, mmHg, beats/min, 0/1, °C). A value outside is
 * a unit or typing error, never a reading to score; the node refuses it.
 */
export const NEWS2_PLAUSIBLE_RANGES = [
  { min: 0, max: 80 }, { min: 40, max: 100 }, { min: 0, max: 1 }, { min: 0, max: 300 }, { min: 0, max: 300 }, { min: 0, max: 1 }, { min: 25, max: 45 },
];

interface Row { base: number; steps: Array<[edge: number, delta: number]> }

export const NEWS2_CHART: Row[] = [
  { base: 3, steps: [[8, -2], [11, -1], [20, 2], [24, 1]] }, // RR ≤8:3, 9–11:1, 12–20:0, 21–24:2, ≥25:3
  { base: 3, steps: [[91, -1], [93, -1], [95, -1]] }, // SpO2 scale 1 ≤91:3, 92–93:2, 94–95:1, ≥96:0
  { base: 0, steps: [[0.5, 2]] }, // oxygen 1 → 2, air 0 → 0
  { base: 3, steps: [[90, -1], [100, -1], [110, -1], [219, 3]] }, // SBP ≤90:3, 91–100:2, 101–110:1, 111–219:0, ≥220:3
  { base: 3, steps: [[40, -2], [50, -1], [90, 1], [110, 1], [130, 1]] }, // pulse ≤40:3, 41–50:1, 51–90:0, 91–110:1, 111–130:2, ≥131:3
  { base: 0, steps: [[0.5, 3]] }, // alert 0 → 0, new confusion/voice/pain/unresponsive 1 → 3
  { base: 3, steps: [[35, -2], [36, -1], [38, 1], [39, 1]] }, // temp ≤35.0:3, 35.1–36.0:1, 36.1–38.0:0, 38.1–39.0:1, ≥39.1:2
];

export const NEWS2_RISK_LABELS = ['low', 'low-medium', 'medium', 'high'];

export function buildNews2(): Uint8Array {
  const p = NEWS2_CHART.length;
  const edges = NEWS2_CHART.flatMap((row, param) => row.steps.map(([edge, delta]) => ({ param, edge, delta })));
  const k = edges.length;
  const deltas = new Float32Array(k * p); // [K,P]: step j adds its delta to its parameter
  edges.forEach(({ param, delta }, j) => {
    deltas[j * p + param] = delta;
  });

  const g = new GraphBuilder('news2');
  const vitals = g.input('vitals', 'FLOAT', ['batch', p]);
  // Each edge reads its vital with a Gather, not a MatMul: a GPU may multiply in TF32 (10-bit mantissa),
  // which would move 38.01 °C onto the 38.0 edge; a Gather copies the value exactly on every provider.
  const perEdge = g.op('Gather', [vitals, g.int64s('edge_param', edges.map((e) => e.param))], { axis: 1 });
  const above = g.op('Cast', [g.op('Greater', [perEdge, g.floats('edges', [k], edges.map((e) => e.edge))])], { to: 1 });
  const steps = g.op('MatMul', [above, g.floats('deltas', [k, p], deltas)]);
  const subscores = g.op('Add', [steps, g.floats('base', [p], NEWS2_CHART.map((r) => r.base))], {}, 'subscores');
  const total = g.op('ReduceSum', [subscores, g.int64s('axis1', [1])], { keepdims: 1 }, 'news2_score');
  const worst = g.op('ReduceMax', [subscores], { axes: [1], keepdims: 1 });
  const flag = (x: string, threshold: number, name: string) =>
    g.op('Cast', [g.op('Greater', [x, g.floats(name, [1], [threshold])])], { to: 1 });
  // Aggregate 5–6 → medium (2), ≥7 → high (3); a single red score (3) → low-medium (1) at least.
  const band = g.op('Add', [g.op('Mul', [flag(total, 4.5, 't5'), g.floats('two', [1], [2])]), flag(total, 6.5, 't7')]);
  const riskFloat = g.op('Max', [band, flag(worst, 2.5, 't_red')]);
  g.op('Cast', [riskFloat], { to: 7 }, 'risk');

  g.output('news2_score', 'FLOAT', ['batch', 1]);
  g.output('subscores', 'FLOAT', ['batch', p]);
  g.output('risk', 'INT64', ['batch', 1]);
  return g.encode();
}
