import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateDevIssuer, devIssuerFiles } from '../auth/dev-issuer.js';
import { devPkiPaths, generateDevPki } from '../tls/dev-pki.js';

/** Creates the development PKI and issuer key in `dir` unless they exist (or `force`). */
export async function ensureDevMaterial(dir: string, nodeCount = 3, force = false): Promise<string> {
  const abs = resolve(dir);
  const paths = devPkiPaths(abs, nodeCount);
  const complete = [paths.ca, paths.gatewayServer.key, paths.gatewayClient.key, paths.apps.ehr.key, paths.untrustedClient.key, ...paths.nodes.map((n) => n.key)].every(existsSync);
  if (force || !complete) await generateDevPki(abs, nodeCount);
  if (force || !existsSync(devIssuerFiles(abs).privateJwk)) await generateDevIssuer(abs);
  return abs;
}
