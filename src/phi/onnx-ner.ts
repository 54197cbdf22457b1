import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PhiSpan, PhiType } from './text-redactor.js';

/**
 * A pluggable token-classification model for the text redactor: an ONNX file
 * on disk (for example a clinical de-identification transformer exported
 * from Hugging Face) run with onnxruntime-node on the CPU. Its spans join the
 * rules' and the tagger's; it never replaces them.
 *
 * The folder holds `model.onnx` (pinned by SHA-256 in the configuration),
 * `vocab.txt` (WordPiece, one token per line: BERT-style) and `labels.json`
 * (the label of each output class, BIO or plain: "O", "B-PATIENT", "I-DATE", …).
 * Inputs it understands: `input_ids` (int64 [1, n]) and, when the model has
 * them, `attention_mask` and `token_type_ids`; output: logits [1, n, labels].
 * Nothing is downloaded: the operator puts the files there.
 */
export interface NerModelConfig {
  dir: string;
  /** SHA-256 of model.onnx; a different file is refused. */
  sha256: string;
  /** Lower-case before WordPiece (uncased models). */
  lowercase?: boolean;
  /** Word pieces per window, [CLS] and [SEP] included. */
  maxLength?: number;
}

/** Entity names of common de-identification label sets, as the redactor's placeholder types. */
const TYPE_OF: Array<[RegExp, PhiType]> = [
  [/^(?:per|person|name|patient|doctor|staff|hcw|username|relative|family)$/i, 'NAME'],
  [/^(?:date|time|datetime|dob)$/i, 'DATE'],
  [/^(?:age)$/i, 'AGE'],
  [/^(?:phone|fax|tel|telephone)$/i, 'PHONE'],
  [/^(?:email|e-mail)$/i, 'EMAIL'],
  [/^(?:url|web)$/i, 'URL'],
  [/^(?:ip|ipaddr|ip_address)$/i, 'IP'],
  [/^(?:ssn|us_ssn)$/i, 'SSN'],
  [/^(?:zip|zipcode|postcode)$/i, 'ZIP'],
  [/^(?:street|address|addr)$/i, 'ADDRESS'],
  [/^(?:loc|location|city|state|country|gpe|hospital|org|organization|organisation|facility|employer)$/i, 'LOCATION'],
];
const typeOf = (entity: string): PhiType => TYPE_OF.find(([re]) => re.test(entity))?.[1] ?? 'ID';

interface Piece { id: number; start: number; end: number }

/** What the running model needs from onnxruntime-node (loaded only when a model is configured). */
interface Session {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: ArrayLike<number>; dims: readonly number[] }>>;
}

export class OnnxNer {
  private constructor(
    private readonly session: Session,
    private readonly makeTensor: (data: BigInt64Array, dims: number[]) => unknown,
    private readonly vocab: Map<string, number>,
    private readonly labels: string[],
    private readonly lowercase: boolean,
    private readonly maxLength: number,
  ) {}

  static async load(config: NerModelConfig): Promise<OnnxNer> {
    const bytes = readFileSync(join(config.dir, 'model.onnx'));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== config.sha256) throw new Error(`NER model ${join(config.dir, 'model.onnx')}: SHA-256 ${actual} does not match the pinned ${config.sha256}`);
    const vocab = new Map(readFileSync(join(config.dir, 'vocab.txt'), 'utf8').split('\n').map((t) => t.replace(/\r$/, '')).filter((t) => t.length > 0).map((t, i) => [t, i] as const));
    const labels = JSON.parse(readFileSync(join(config.dir, 'labels.json'), 'utf8')) as unknown;
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new Error('NER model labels.json must be a JSON array of label names');
    if (!vocab.has('[UNK]')) throw new Error('NER model vocab.txt has no [UNK]');
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    return new OnnxNer(session as unknown as Session, (data, dims) => new ort.Tensor('int64', data, dims), vocab, labels as string[], config.lowercase ?? true, config.maxLength ?? 512);
  }

  /** BERT's basic tokenizer (whitespace, then punctuation apart) and greedy longest-match WordPiece, with character offsets. */
  private pieces(text: string): Piece[] {
    const out: Piece[] = [];
    const unk = this.vocab.get('[UNK]')!;
    for (const m of text.matchAll(/[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu)) {
      const word = this.lowercase ? m[0].toLowerCase() : m[0];
      let at = 0;
      const wordPieces: Piece[] = [];
      while (at < word.length) {
        let end = word.length;
        let id: number | undefined;
        while (end > at) {
          id = this.vocab.get(`${at > 0 ? '##' : ''}${word.slice(at, end)}`);
          if (id !== undefined) break;
          end--;
        }
        if (id === undefined) { wordPieces.length = 0; wordPieces.push({ id: unk, start: m.index, end: m.index + m[0].length }); break; }
        wordPieces.push({ id, start: m.index + at, end: m.index + end });
        at = end;
      }
      out.push(...wordPieces);
    }
    return out;
  }

  /** The model's entity spans in the text, windows of maxLength pieces at a time. */
  async spans(text: string): Promise<PhiSpan[]> {
    const pieces = this.pieces(text);
    const cls = this.vocab.get('[CLS]'), sep = this.vocab.get('[SEP]');
    const room = this.maxLength - (cls !== undefined ? 1 : 0) - (sep !== undefined ? 1 : 0);
    const out: PhiSpan[] = [];
    for (let from = 0; from < pieces.length; from += room) {
      const window = pieces.slice(from, from + room);
      const ids = [...(cls !== undefined ? [cls] : []), ...window.map((p) => p.id), ...(sep !== undefined ? [sep] : [])];
      const dims = [1, ids.length];
      const feeds: Record<string, unknown> = {};
      for (const name of this.session.inputNames) {
        if (name === 'input_ids') feeds[name] = this.makeTensor(BigInt64Array.from(ids.map(BigInt)), dims);
        else if (name === 'attention_mask') feeds[name] = this.makeTensor(new BigInt64Array(ids.length).fill(1n), dims);
        else if (name === 'token_type_ids') feeds[name] = this.makeTensor(new BigInt64Array(ids.length), dims);
        else throw new Error(`NER model input "${name}" is not one cdsgate can fill (input_ids, attention_mask, token_type_ids)`);
      }
      const result = await this.session.run(feeds);
      const logits = result[this.session.outputNames[0]!]!;
      const classes = logits.dims[logits.dims.length - 1]!;
      if (classes !== this.labels.length) throw new Error(`NER model has ${classes} classes but labels.json names ${this.labels.length}`);
      const offset = cls !== undefined ? 1 : 0;
      window.forEach((piece, i) => {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits.data[(i + offset) * classes + c]! > logits.data[(i + offset) * classes + best]!) best = c;
        const label = this.labels[best]!;
        if (label === 'O') return;
        const type = typeOf(label.replace(/^[BIES]-/, ''));
        const last = out[out.length - 1];
        // A piece continues the span before it when it is the same type and only spaces lie between (B-/I- tags or none).
        if (last && last.type === type && !label.startsWith('B-') && /^\s*$/.test(text.slice(last.end, piece.start))) last.end = piece.end;
        else out.push({ start: piece.start, end: piece.end, type });
      });
    }
    return out;
  }
}
