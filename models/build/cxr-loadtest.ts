/**
 * A chest-X-ray-shaped convolutional network (1×224×224 in, 2 classes out)
 * with deterministic, UNTRAINED weights: a compute load for benchmarks and GPU
 * runs, never a diagnostic model.
 */
import { GraphBuilder, mulberry32 } from './onnx-graph.js';

const CHANNELS = [1, 16, 32, 64, 128];

export function buildCxrLoadtest(): Uint8Array {
  const random = mulberry32(224);
  const uniform = (n: number, limit: number) => Array.from({ length: n }, () => (random() * 2 - 1) * limit);
  const g = new GraphBuilder('cxr_loadtest');
  let x = g.input('image', 'FLOAT', ['batch', 1, 224, 224]);
  for (let layer = 1; layer < CHANNELS.length; layer++) {
    const cin = CHANNELS[layer - 1]!, cout = CHANNELS[layer]!;
    const fanIn = cin * 9;
    const w = g.floats(`conv${layer}_w`, [cout, cin, 3, 3], uniform(cout * fanIn, Math.sqrt(6 / fanIn)));
    const b = g.floats(`conv${layer}_b`, [cout], new Array<number>(cout).fill(0.01));
    x = g.op('Relu', [g.op('Conv', [x, w, b], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })]);
  }
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: 1 });
  const last = CHANNELS[CHANNELS.length - 1]!;
  const logits = g.op('Gemm', [pooled, g.floats('fc_w', [last, 2], uniform(last * 2, Math.sqrt(6 / last))), g.floats('fc_b', [2], [0, 0])]);
  g.op('Softmax', [logits], { axis: 1 }, 'probabilities');
  g.output('probabilities', 'FLOAT', ['batch', 2]);
  return g.encode();
}
