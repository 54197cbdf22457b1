import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { redactText } from '../phi/text-redactor.js';
import { redactFhir } from '../phi/fhir-redactor.js';
import { Pseudonymizer } from '../phi/pseudonym.js';
import { OnnxNer, type NerModelConfig } from '../phi/onnx-ner.js';

/** `cdsgate phi redact`: JSON Lines in, de-identified JSON Lines out, one line at a time. */
export async function redactLines(input: Readable, output: Writable, o: { fhir: boolean; keyFile?: string; keyId: string; ner?: NerModelConfig }): Promise<void> {
  const ner = o.ner ? await OnnxNer.load(o.ner) : undefined;
  const psn = o.keyFile ? Pseudonymizer.load({ file: o.keyFile }, o.keyId) : undefined;
  const pseudonym = psn ? (kind: string, value: string) => psn.pseudonym(kind, value) : undefined;
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    n++;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`line ${n} is not valid JSON`);
    }
    if (o.fhir) {
      output.write(`${JSON.stringify(redactFhir(value, pseudonym ? { pseudonym } : {}))}\n`);
      continue;
    }
    const record = value as { id?: unknown; text?: unknown };
    if (typeof record.text !== 'string') throw new Error(`line ${n} has no "text" string`);
    const { text, spans } = redactText(record.text, ner ? await ner.spans(record.text) : []);
    output.write(`${JSON.stringify({ id: record.id, text, spans })}\n`);
  }
}
