import { invalid, quote, shapeText } from '../errors.js';
import { type Datatype, type Tensor, type TensorLimits, DEFAULT_TENSOR_LIMITS, checkTensorSize, elementCount, numericInfo } from './datatypes.js';

// KServe raw tensors are little-endian; typed arrays use the host's order.
// Every platform onnxruntime-node ships for (x64, arm64) is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('cdsgate requires a little-endian host');
}

/** Raw little-endian bytes (gRPC raw_*_contents, binary REST extension) → internal tensor. */
export function tensorFromRaw(name: string, datatype: Datatype, shape: number[], bytes: Uint8Array, where = 'input', limits: TensorLimits = DEFAULT_TENSOR_LIMITS): Tensor {
  const at = `${where} ${quote(name)}`;
  const count = elementCount(shape, at);
  checkTensorSize(datatype, shape, count, at, limits);
  if (datatype === 'BYTES') {
    // Every element carries at least its 4-byte length: a count the bytes cannot hold is refused before the element list exists.
    if (count * 4 > bytes.byteLength) throw invalid(`${at}: raw BYTES contents hold ${bytes.byteLength} bytes, too few for the ${count} elements of shape ${shapeText(shape)}`);
    return { name, datatype, shape, data: splitBytesElements(bytes, count, at) };
  }
  const { ctor } = numericInfo(datatype);
  const expected = count * ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== expected) {
    throw invalid(`${at}: raw contents hold ${bytes.byteLength} bytes but ${datatype} shape ${shapeText(shape)} needs ${expected}`);
  }
  // View in place when aligned; gRPC buffers are often slices at odd offsets, so copy then.
  // (new Uint8Array(x) copies; Buffer#slice would only make another view.)
  const aligned = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0;
  const source = aligned ? bytes : new Uint8Array(bytes);
  const data = new ctor(source.buffer, source.byteOffset, count);
  if (datatype === 'BOOL') {
    for (let i = 0; i < data.length; i++) {
      if ((data as Uint8Array)[i]! > 1) throw invalid(`${at}: BOOL element ${i} is ${(data as Uint8Array)[i]}, expected 0 or 1`);
    }
  }
  return { name, datatype, shape, data };
}

/** BYTES elements are each a 4-byte little-endian length followed by that many bytes. */
function splitBytesElements(bytes: Uint8Array, count: number, at: string): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = new Array<Uint8Array>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) throw invalid(`${at}: raw BYTES contents end before element ${i} of ${count}`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) throw invalid(`${at}: raw BYTES element ${i} claims ${length} bytes past the end of the contents`);
    out[i] = bytes.subarray(offset, offset + length);
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw invalid(`${at}: raw BYTES contents have ${bytes.byteLength - offset} bytes left over after ${count} elements`);
  }
  return out;
}

/** Internal tensor → raw little-endian bytes (no copy for numeric tensors). */
export function tensorToRaw(t: Tensor): Uint8Array {
  if (Array.isArray(t.data)) {
    const total = t.data.reduce((sum, el) => sum + 4 + el.byteLength, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let offset = 0;
    for (const el of t.data) {
      view.setUint32(offset, el.byteLength, true);
      out.set(el, offset + 4);
      offset += 4 + el.byteLength;
    }
    return out;
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
