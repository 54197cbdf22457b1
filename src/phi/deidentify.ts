import { CdsError } from '../errors.js';
import type { PhiClass } from '../config/schema.js';
import type { InferRequest } from '../kserve/types.js';
import type { Tensor } from '../tensor/datatypes.js';
import type { Pseudonymizer } from './pseudonym.js';
import { redactText, type PhiSpan } from './text-redactor.js';
import { redactFhir } from './fhir-redactor.js';

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * The request a model that receives only de-identified data gets: free text
 * scrubbed, FHIR redacted, identifiers replaced by keyed pseudonyms (so a
 * model can still link records of one patient). Inputs without PHI pass as
 * they are. The result is flagged, and only flagged requests reach a
 * de-identified pool.
 */
export function deidentifyRequest(request: InferRequest, phiInputs: Record<string, PhiClass>, psn: Pseudonymizer, extraSpans: (text: string) => readonly PhiSpan[] = () => []): InferRequest {
  const inputs = request.inputs.map((t): Tensor => {
    const phi = phiInputs[t.name] ?? 'none';
    if (phi === 'none') return t;
    if (!Array.isArray(t.data)) {
      throw new CdsError('invalid_argument', `input '${t.name}' carries PHI (${phi}) and must be BYTES so it can be de-identified`);
    }
    const transform = (s: string): string => {
      if (phi === 'identifier') return psn.pseudonym('patient', s);
      if (phi === 'text') return redactText(s, extraSpans(s)).text;
      try {
        return JSON.stringify(redactFhir(JSON.parse(s), { pseudonym: (kind, v) => psn.pseudonym(kind, v) }));
      } catch {
        throw new CdsError('invalid_argument', `input '${t.name}' must hold FHIR JSON`);
      }
    };
    return { ...t, data: t.data.map((b) => utf8Encoder.encode(transform(utf8.decode(b)))) };
  });
  // A client-chosen request id could carry PHI too.
  return { ...request, ...(request.id ? { id: psn.pseudonym('request-id', request.id) } : {}), inputs, deidentified: true };
}
