/**
 * Cases written from the published NEWS2 chart (RCP 2017), independent of the
 * model's own threshold table: each row is a normal observation set with one
 * parameter at a band edge, and the subscore the chart gives for it.
 */
export const NORMAL_VITALS = [16, 97, 0, 120, 70, 0, 37.0];

export const CHART_EDGES: Array<{ param: number; label: string; value: number; score: number }> = [
  ...([[8, 3], [9, 1], [11, 1], [12, 0], [20, 0], [21, 2], [24, 2], [25, 3]] as const).map(([value, score]) => ({ param: 0, label: 'respiration rate', value, score })),
  ...([[91, 3], [92, 2], [93, 2], [94, 1], [95, 1], [96, 0]] as const).map(([value, score]) => ({ param: 1, label: 'SpO2 scale 1', value, score })),
  ...([[0, 0], [1, 2]] as const).map(([value, score]) => ({ param: 2, label: 'supplemental oxygen', value, score })),
  ...([[90, 3], [91, 2], [100, 2], [101, 1], [110, 1], [111, 0], [219, 0], [220, 3]] as const).map(([value, score]) => ({ param: 3, label: 'systolic BP', value, score })),
  ...([[40, 3], [41, 1], [50, 1], [51, 0], [90, 0], [91, 1], [110, 1], [111, 2], [130, 2], [131, 3]] as const).map(([value, score]) => ({ param: 4, label: 'pulse', value, score })),
  ...([[0, 0], [1, 3]] as const).map(([value, score]) => ({ param: 5, label: 'consciousness', value, score })),
  ...([[35.0, 3], [35.1, 1], [36.0, 1], [36.1, 0], [38.0, 0], [38.1, 1], [39.0, 1], [39.1, 2]] as const).map(([value, score]) => ({ param: 6, label: 'temperature', value, score })),
];

export function edgeRows(): number[][] {
  return CHART_EDGES.map(({ param, value }) => NORMAL_VITALS.map((v, i) => (i === param ? value : v)));
}

/** Aggregate cases: vitals, total, risk band (0 low, 1 low-medium, 2 medium, 3 high). */
export const AGGREGATE_CASES: Array<{ vitals: number[]; total: number; risk: number; why: string }> = [
  { vitals: NORMAL_VITALS, total: 0, risk: 0, why: 'all normal' },
  { vitals: [22, 95, 0, 120, 95, 0, 37], total: 4, risk: 0, why: 'aggregate 4, no red score' },
  { vitals: [8, 97, 0, 120, 70, 0, 37], total: 3, risk: 1, why: 'single red score (RR 8)' },
  { vitals: [22, 95, 0, 105, 95, 0, 37], total: 5, risk: 2, why: 'aggregate 5' },
  { vitals: [22, 95, 1, 105, 95, 0, 37], total: 7, risk: 3, why: 'aggregate 7' },
  { vitals: [25, 91, 1, 90, 131, 1, 35], total: 20, risk: 3, why: 'maximum 20' },
];
