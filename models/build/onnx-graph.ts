/**
 * A minimal ONNX graph writer over onnx-proto. Serialisation is deterministic
 * for the same graph, so the build scripts reproduce the committed SHA-256.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import onnxProto, { type onnx as Onnx } from 'onnx-proto';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export type ElemType = 'FLOAT' | 'INT64' | 'BOOL' | 'STRING';
type Dim = number | string;
type AttrValue = number | number[] | { float: number } | { floats: number[] };

export class GraphBuilder {
  private readonly nodes: Onnx.INodeProto[] = [];
  private readonly initializers: Onnx.ITensorProto[] = [];
  private readonly inputs: Onnx.IValueInfoProto[] = [];
  private readonly outputs: Onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  floats(name: string, dims: number[], values: ArrayLike<number>): string {
    const data = Float32Array.from(values);
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values for dims ${dims}`);
    this.initializers.push({ name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  int64s(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({ name, dims: [values.length], dataType: DT.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  /** Adds a node; returns its output name (or the given one). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({
      opType,
      name: `${opType}_${this.nodes.length}`,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return out;
  }

  encode(opset = 13): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'cdsgate-models',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DT[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): Onnx.IAttributeProto {
  if (typeof v === 'number') return { name, type: AT.INT, i: v };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if ('float' in v) return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.FLOATS, floats: v.floats };
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export function writeFile(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

/** Deterministic PRNG: same seed, same weights, same hash. */
export { mulberry32 } from '../../src/seeded-random.js';
