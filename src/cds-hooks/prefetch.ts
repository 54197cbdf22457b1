import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { CdsClientConfig } from '../config/schema.js';
import { CdsError } from '../errors.js';
import type { HookRequest } from './hook-request.js';

/**
 * A prefetch template with its tokens filled from the hook context:
 * {{context.<field>}} for the context's ids, and {{userPractitionerId}}-style
 * tokens for the user's id by type. The context fields were validated as FHIR
 * ids, so what is substituted cannot add a query or a path. Undefined when the
 * template names a token the context lacks.
 */
export function renderTemplate(template: string, request: HookRequest): string | undefined {
  const [userType, userId] = request.context.userId.split('/') as [string, string];
  let missing = false;
  const rendered = template.replace(/\{\{\s*([A-Za-z.]+)\s*\}\}/g, (_, token: string) => {
    let value: unknown;
    if (token.startsWith('context.')) value = request.context[token.slice('context.'.length)];
    else if (token === `user${userType}Id`) value = userId;
    if (typeof value !== 'string') { missing = true; return ''; }
    return encodeURIComponent(value);
  });
  return missing ? undefined : rendered;
}

export interface FhirFetcher {
  /** GET a relative FHIR query from the request's FHIR server with its access token, within the deadline. */
  fetch(request: HookRequest, query: string, deadline: number): Promise<unknown>;
}

/**
 * Fetches what the CDS client did not prefetch, only from FHIR servers on the
 * client's allow-list, over TLS, with the access token the client gave for
 * this call, bounded in time and size. The token is sent and never kept.
 */
export function fhirFetcher(client: CdsClientConfig, limits: { timeoutMs: number; maxBytes: number }): FhirFetcher {
  const dispatcher = new Agent({ connect: client.fhirCa ? { ca: readFileSync(client.fhirCa) } : {}, connections: 16 });
  return {
    async fetch(hook, query, deadline) {
      const server = hook.fhirServer;
      const auth = hook.fhirAuthorization;
      if (!server || !auth) throw new CdsError('failed_precondition', 'the service needs FHIR data that was not prefetched, and the request gives no fhirServer and fhirAuthorization to fetch it with');
      if (!allowed(server, client.fhirServers)) throw new CdsError('failed_precondition', 'fhirServer is not one this CDS client may send; the data it needs cannot be fetched');
      const url = new URL(query.replace(/^\//, ''), server.endsWith('/') ? server : `${server}/`);
      if (!allowed(url.href, client.fhirServers)) throw new CdsError('failed_precondition', 'a prefetch query resolves outside the FHIR server');
      const timeout = Math.max(1, Math.min(limits.timeoutMs, deadline - Date.now()));
      let response;
      try {
        response = await request(url, {
          method: 'GET', dispatcher, headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout),
          headers: { accept: 'application/fhir+json', authorization: `Bearer ${auth.access_token}` },
        });
      } catch (err) {
        throw new CdsError('failed_precondition', `the FHIR server could not be reached in time (${(err as Error).name})`);
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new CdsError('failed_precondition', `the FHIR server answered ${response.statusCode} to a prefetch query`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > limits.maxBytes) {
          response.body.destroy();
          throw new CdsError('failed_precondition', `a FHIR response was larger than ${limits.maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      try {
        return JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        throw new CdsError('failed_precondition', 'the FHIR server answered something that is not JSON');
      }
    },
  };
}

/** A URL is allowed when it starts with an allowed server's URL, at a path boundary. */
function allowed(url: string, servers: readonly string[]): boolean {
  let u: URL;
  try { u = new URL(url); } catch { return false; }
  if (u.protocol !== 'https:' || u.username || u.password) return false;
  return servers.some((s) => {
    const base = new URL(s);
    const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
    return u.origin === base.origin && (`${u.pathname}/`.startsWith(prefix) || u.pathname === base.pathname);
  });
}
