import 'reflect-metadata';
import { webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** Identities used across the development PKI; tests and dev configs refer to these names. */
export const DEV_IDENTITIES = {
  gatewayClient: 'spiffe://cdsgate.local/gateway',
  appEhr: 'spiffe://cdsgate.local/app/ehr-integration',
  appSmart: 'spiffe://cdsgate.local/app/smart-app',
  nodeServerName: (i: number) => `node-${i}.cdsgate.local`,
  gatewayServerName: 'gateway.cdsgate.local',
} as const;

export interface DevPkiPaths {
  dir: string;
  ca: string;
  gatewayServer: { cert: string; key: string };
  gatewayClient: { cert: string; key: string };
  nodes: Array<{ cert: string; key: string; serverName: string }>;
  apps: { ehr: { cert: string; key: string }; smart: { cert: string; key: string } };
  untrustedCa: string;
  untrustedClient: { cert: string; key: string };
  /** Client certificates the gateway must refuse at the handshake: long expired, and issued for serverAuth only. */
  expiredClient: { cert: string; key: string };
  serverAuthOnlyClient: { cert: string; key: string };
  /** The CA's certificate revocation list (empty until `cdsgate certs revoke`). */
  crl: string;
}

interface Issued { cert: x509.X509Certificate; keys: CryptoKeyPair }

async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

async function createCa(name: string): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}, O=cdsgate development`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

type SanEntry = { type: 'dns' | 'ip' | 'url'; value: string };

async function issue(ca: Issued, commonName: string, sans: SanEntry[], usage: 'server' | 'client' | 'both', validity = { notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY) }): Promise<Issued> {
  const keys = await newKeys();
  const eku = usage === 'server' ? [x509.ExtendedKeyUsage.serverAuth]
    : usage === 'client' ? [x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${commonName}, O=cdsgate development`,
    issuer: ca.cert.subject,
    ...validity,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension(eku),
      new x509.SubjectAlternativeNameExtension(sans),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { cert, keys };
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
}

/** PKCS#8 PEM (the label is assembled so this source file never looks like key material to scanners). */
const PEM_LABEL = ['PRIVATE', 'KEY'].join(' ');

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN ${PEM_LABEL}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END ${PEM_LABEL}-----\n`;
}

async function save(dir: string, name: string, issued: Issued): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`), key = join(dir, `${name}.key`);
  writeFileSync(cert, issued.cert.toString('pem') + '\n');
  writeFileSync(key, await keyPem(issued.keys.privateKey), { mode: 0o600 });
  chmodSync(key, 0o600);
  return { cert, key };
}

const loopback: SanEntry[] = [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }];

/**
 * Writes a development PKI: root CA, gateway server and client certificates,
 * node server certificates, two application client certificates, and a second,
 * untrusted CA whose client certificate claims the gateway's identity (so
 * tests can show that the name alone opens nothing).
 */
export async function generateDevPki(dir: string, nodeCount = 3): Promise<DevPkiPaths> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa('cdsgate development root CA');
  const untrusted = await createCa('untrusted CA');
  writeFileSync(join(dir, 'ca.pem'), ca.cert.toString('pem') + '\n');
  // The CA key stays (git-ignored, mode 0600) so the dev PKI can revoke: `cdsgate certs revoke NAME`.
  writeFileSync(join(dir, 'ca.key'), await keyPem(ca.keys.privateKey), { mode: 0o600 });
  chmodSync(join(dir, 'ca.key'), 0o600);
  await writeCrl(dir, ca, []);
  writeFileSync(join(dir, 'untrusted-ca.pem'), untrusted.cert.toString('pem') + '\n');
  const nodes = [];
  for (let i = 0; i < nodeCount; i++) {
    const serverName = DEV_IDENTITIES.nodeServerName(i);
    const paths = await save(dir, `node-${i}`, await issue(ca, serverName, [{ type: 'dns', value: serverName }, ...loopback], 'server'));
    nodes.push({ ...paths, serverName });
  }
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    gatewayServer: await save(dir, 'gateway-server', await issue(ca, DEV_IDENTITIES.gatewayServerName,
      [{ type: 'dns', value: DEV_IDENTITIES.gatewayServerName }, ...loopback], 'server')),
    gatewayClient: await save(dir, 'gateway-client', await issue(ca, 'cdsgate gateway', [{ type: 'url', value: DEV_IDENTITIES.gatewayClient }], 'client')),
    nodes,
    apps: {
      ehr: await save(dir, 'app-ehr', await issue(ca, 'EHR integration', [{ type: 'url', value: DEV_IDENTITIES.appEhr }], 'client')),
      smart: await save(dir, 'app-smart', await issue(ca, 'SMART app', [{ type: 'url', value: DEV_IDENTITIES.appSmart }], 'client')),
    },
    untrustedCa: join(dir, 'untrusted-ca.pem'),
    untrustedClient: await save(dir, 'untrusted-client', await issue(untrusted, 'cdsgate gateway', [{ type: 'url', value: DEV_IDENTITIES.gatewayClient }], 'client')),
    expiredClient: await save(dir, 'expired-client', await issue(ca, 'expired app', [{ type: 'url', value: 'spiffe://cdsgate.local/app/expired' }], 'client',
      { notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - 35 * DAY) })),
    serverAuthOnlyClient: await save(dir, 'server-only-client', await issue(ca, 'server-only app', [{ type: 'url', value: 'spiffe://cdsgate.local/app/server-only' }], 'server')),
    crl: join(dir, 'crl.pem'),
  };
}

/** Signs and writes the CA's CRL (atomically: the servers poll the file and must never read half of it). */
async function writeCrl(dir: string, ca: Issued, serials: string[]): Promise<void> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 30 * DAY),
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
    signingAlgorithm: ALG,
    signingKey: ca.keys.privateKey,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert)],
  });
  const file = join(dir, 'crl.pem');
  // OpenSSL reads the RFC 7468 label "X509 CRL"; the library writes plain "CRL".
  const base64 = Buffer.from(crl.rawData).toString('base64').replace(/(.{64})/g, '$1\n').trim();
  writeFileSync(`${file}.tmp`, `-----BEGIN X509 CRL-----\n${base64}\n-----END X509 CRL-----\n`);
  renameSync(`${file}.tmp`, file);
}

/** The development CA with its key (kept, git-ignored, so that the dev PKI can revoke and renew). */
async function loadDevCa(dir: string): Promise<Issued> {
  const keyFile = join(dir, 'ca.key');
  if (!existsSync(keyFile)) throw new Error(`${keyFile} is missing: this PKI was generated without its CA key; regenerate it with cdsgate certs --force`);
  const cert = new x509.X509Certificate(readFileSync(join(dir, 'ca.pem'), 'utf8'));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(readFileSync(keyFile, 'utf8')), ALG, false, ['sign']) as CryptoKey;
  return { cert, keys: { privateKey, publicKey: await cert.publicKey.export() } as CryptoKeyPair };
}

/**
 * Revokes a certificate of the development PKI: adds its serial to the CA's
 * CRL (crl.pem) and re-signs it. Servers configured with `tls.crl` pick the
 * change up within a second, without a restart.
 */
export async function revokeDevCertificate(dir: string, certificateFile: string): Promise<{ serialNumber: string; crl: string }> {
  const ca = await loadDevCa(dir);
  const caCert = ca.cert;
  const target = new x509.X509Certificate(readFileSync(certificateFile, 'utf8'));
  if (target.issuer !== caCert.subject) throw new Error(`${certificateFile} was not issued by this CA`);
  const crlFile = join(dir, 'crl.pem');
  const serials = existsSync(crlFile) ? new x509.X509Crl(readFileSync(crlFile, 'utf8')).entries.map((e) => e.serialNumber) : [];
  if (!serials.includes(target.serialNumber)) serials.push(target.serialNumber);
  await writeCrl(dir, ca, serials);
  return { serialNumber: target.serialNumber, crl: crlFile };
}

/**
 * Renews a certificate of the development PKI as a certificate manager would: a new key and a new certificate with
 * the same subject, names and purpose, written over DIR/NAME.pem and DIR/NAME.key (each atomically; the key first,
 * so a server that reads in between finds a pair that does not match, refuses it and keeps the old one). Servers
 * whose tls files those are serve the new certificate within about a second, without a restart.
 */
export async function renewDevCertificate(dir: string, name: string): Promise<{ serialNumber: string; cert: string; key: string }> {
  const ca = await loadDevCa(dir);
  const certFile = join(dir, `${name}.pem`);
  const old = new x509.X509Certificate(readFileSync(certFile, 'utf8'));
  if (old.issuer !== ca.cert.subject) throw new Error(`${certFile} was not issued by this CA`);
  const commonName = /CN=([^,]+)/.exec(old.subject)?.[1] ?? name;
  const sans = (old.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [])
    .filter((n) => n.type === 'dns' || n.type === 'ip' || n.type === 'url').map((n) => ({ type: n.type as SanEntry['type'], value: n.value }));
  const usages = old.getExtension(x509.ExtendedKeyUsageExtension)?.usages.map(String) ?? [];
  const server = usages.includes(x509.ExtendedKeyUsage.serverAuth), client = usages.includes(x509.ExtendedKeyUsage.clientAuth);
  const renewed = await issue(ca, commonName, sans, server && client ? 'both' : server ? 'server' : 'client');
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(`${keyPath}.tmp`, await keyPem(renewed.keys.privateKey), { mode: 0o600 });
  renameSync(`${keyPath}.tmp`, keyPath);
  writeFileSync(`${certFile}.tmp`, renewed.cert.toString('pem') + '\n');
  renameSync(`${certFile}.tmp`, certFile);
  return { serialNumber: renewed.cert.serialNumber, cert: certFile, key: keyPath };
}

/** The paths generateDevPki writes, without generating (for a PKI that already exists). */
export function devPkiPaths(dir: string, nodeCount = 3): DevPkiPaths {
  const pair = (name: string) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    gatewayServer: pair('gateway-server'),
    gatewayClient: pair('gateway-client'),
    nodes: Array.from({ length: nodeCount }, (_, i) => ({ ...pair(`node-${i}`), serverName: DEV_IDENTITIES.nodeServerName(i) })),
    apps: { ehr: pair('app-ehr'), smart: pair('app-smart') },
    untrustedCa: join(dir, 'untrusted-ca.pem'),
    untrustedClient: pair('untrusted-client'),
    expiredClient: pair('expired-client'),
    serverAuthOnlyClient: pair('server-only-client'),
    crl: join(dir, 'crl.pem'),
  };
}
