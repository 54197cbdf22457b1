import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { generateDevIssuer, devIssuerFiles, devEhrFiles, DEV_EHR_ALG } from '../auth/dev-issuer.js';
import { devPkiPaths, generateDevPki } from '../tls/dev-pki.js';

export interface DevSecrets {
  /** The gateway's Ed25519 audit signing key, and its public half for `cdsgate audit verify`. */
  auditSigningKey: string;
  auditPublicKey: string;
  /** Base64 HMAC key for pseudonyms and input digests. */
  pseudonymKey: string;
  auditDir: string;
}

export const devSecrets = (dir: string): DevSecrets => ({
  auditSigningKey: join(dir, 'audit-signing.key'),
  auditPublicKey: join(dir, 'audit-signing.pub.pem'),
  pseudonymKey: join(dir, 'pseudonym.key'),
  auditDir: join(dir, 'audit'),
});

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function generateDevSecrets(dir: string): DevSecrets {
  const files = devSecrets(dir);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeSecret(files.auditSigningKey, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  writeFileSync(files.auditPublicKey, publicKey.export({ type: 'spki', format: 'pem' }).toString());
  writeSecret(files.pseudonymKey, `${randomBytes(32).toString('base64')}\n`);
  return files;
}

/** Creates the development PKI, issuer key, audit key and pseudonym key in `dir` unless they exist (or `force`). */
export async function ensureDevMaterial(dir: string, nodeCount = 3, force = false): Promise<string> {
  const abs = resolve(dir);
  const paths = devPkiPaths(abs, nodeCount);
  const complete = [paths.ca, paths.gatewayServer.key, paths.gatewayClient.key, paths.apps.ehr.key, paths.untrustedClient.key, ...paths.nodes.map((n) => n.key)].every(existsSync);
  if (force || !complete) await generateDevPki(abs, nodeCount);
  if (force || !existsSync(devIssuerFiles(abs).privateJwk)) await generateDevIssuer(abs);
  if (force || !existsSync(devEhrFiles(abs).privateJwk)) await generateDevIssuer(abs, devEhrFiles(abs), DEV_EHR_ALG);
  const secrets = devSecrets(abs);
  if (force || !existsSync(secrets.auditSigningKey) || !existsSync(secrets.pseudonymKey)) generateDevSecrets(abs);
  return abs;
}
