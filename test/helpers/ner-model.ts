import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../models/build/onnx-graph.js';

/**
 * A tiny token-classification model the project builds itself, shaped like
 * an exported BERT NER model at its edges (input_ids [1, n] → logits
 * [1, n, labels], WordPiece vocab, BIO labels): an embedding lookup whose
 * rows say which word pieces are a patient's name. It lets the tests run the
 * pluggable-NER path for real with nothing downloaded.
 */
export function buildNerModel(): { dir: string; sha256: string } {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'visited', 'by', 'today', '.', 'brick', 'house', '##ton', 'the', 'at'];
  const labels = ['O', 'B-PATIENT', 'I-PATIENT'];
  const tagOf: Record<string, number> = { brick: 1, house: 2, '##ton': 2 };
  const table = vocab.flatMap((token) => labels.map((_, c) => (c === (tagOf[token] ?? 0) ? 5 : 0)));
  const g = new GraphBuilder('cdsgate-test-ner');
  const ids = g.input('input_ids', 'INT64', [1, 'n']);
  const embeddings = g.floats('logits_table', [vocab.length, labels.length], table);
  g.op('Gather', [embeddings, ids], { axis: 0 }, 'logits');
  g.output('logits', 'FLOAT', [1, 'n', labels.length]);
  const bytes = g.encode();
  const dir = mkdtempSync(join(tmpdir(), 'cdsgate-ner-'));
  writeFileSync(join(dir, 'model.onnx'), bytes);
  writeFileSync(join(dir, 'vocab.txt'), `${vocab.join('\n')}\n`);
  writeFileSync(join(dir, 'labels.json'), JSON.stringify(labels));
  return { dir, sha256: createHash('sha256').update(bytes).digest('hex') };
}
