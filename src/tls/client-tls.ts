import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { reloadWhenChanged, type ReloadReport } from './file-watch.js';

/** The gateway's client certificate and key for its nodes, and the CA their server certificates must chain to. */
export interface ClientTlsFiles { cert: string; key: string; ca: string }
export interface ClientTlsMaterial { ca: Buffer; cert: Buffer; key: Buffer }

/** Reads the files and checks they make a working context (a key that does not match its certificate throws). */
export function readClientTls(files: ClientTlsFiles): ClientTlsMaterial {
  const material = { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) };
  createSecureContext(material);
  return material;
}

/**
 * Watches the gateway's client TLS files: a renewed client certificate or a
 * new CA bundle goes to every node client (`apply`), without a restart, and
 * each sends its next requests on connections made with it; requests already
 * on an old connection finish there (rest-node-client.ts and
 * grpc-node-client.ts, reloadTls). Files that do not make a working context
 * (a certificate written before its key) keep the previous material in force
 * and are reported.
 */
export function reloadClientTlsOnChange(files: ClientTlsFiles, apply: (tls: ClientTlsMaterial) => void, log: ReloadReport['log'], counted?: ReloadReport['counted']): () => void {
  return reloadWhenChanged([files.cert, files.key, files.ca], () => readClientTls(files), apply, {
    log, counted,
    applied: 'node client TLS file changed: certificate, key and CA bundle reloaded; new requests to nodes go on connections made with them',
    refused: 'node client TLS file changed but the files do not make a usable context; the previous ones stay in force',
  });
}
