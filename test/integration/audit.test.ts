import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import {
  CLI, auditRecords, requestRecords, auditText, grpcCall, grpcClient, httpsCall, jsonLogs, rid, runCliAsync, scrapeMetrics, startCluster, startProcess, stopProcess, waitFor, type Cluster,
} from '../helpers/cluster.js';

const VITALS = { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [24, 93, 1, 105, 115, 0, 38.5] }] };

describe('audit: one record per request, durable, verifiable', () => {
  let cluster: Cluster;
  const sent: Array<{ id: string; expect: { outcome: string; status: string; code: number } }> = [];

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 1,
      gatewayPatch: (c) => {
        c.models.news2 = { pool: 'default', allowRoles: ['clinician'], purposes: ['TREAT', 'ETREAT'], breakTheGlass: { allowRoles: ['physician'] } };
      },
    });
  });
  afterAll(async () => { await cluster?.stop(); });

  const rest = (id: string, path: string, o: { token?: string; body?: unknown } = {}) => httpsCall(cluster.gateway.ports.rest!, path, {
    ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token: o.token, body: o.body, headers: { 'x-request-id': rid(id) },
  });

  it('records every outcome exactly once, on both doors, before answering', async () => {
    const treat = await cluster.token(['clinician'], { claims: { purpose_of_use: 'TREAT' } });
    const cases: Array<[string, () => Promise<unknown>, { outcome: string; status: string; code: number }]> = [
      ['a-ok-rest', () => rest('a-ok-rest', '/v2/models/news2/infer', { token: treat, body: VITALS }), { outcome: 'success', status: 'ok', code: 200 }],
      ['a-no-token', () => rest('a-no-token', '/v2/models/news2/infer', { body: VITALS }), { outcome: 'failure', status: 'unauthenticated', code: 401 }],
      ['a-bad-token', () => rest('a-bad-token', '/v2/models/news2/infer', { token: `${treat}x`, body: VITALS }), { outcome: 'failure', status: 'unauthenticated', code: 401 }],
      ['a-no-purpose', async () => rest('a-no-purpose', '/v2/models/news2/infer', { token: await cluster.token(['clinician']), body: VITALS }), { outcome: 'failure', status: 'permission_denied', code: 403 }],
      ['a-unknown', () => rest('a-unknown', '/v2/models/nope/infer', { token: treat, body: VITALS }), { outcome: 'failure', status: 'not_found', code: 404 }],
      ['a-bad-input', () => rest('a-bad-input', '/v2/models/news2/infer', { token: treat, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [1] }] } }), { outcome: 'failure', status: 'invalid_argument', code: 400 }],
      ['a-metadata', () => rest('a-metadata', '/v2/models/news2', { token: treat }), { outcome: 'success', status: 'ok', code: 200 }],
      ['a-ok-grpc', async () => {
        const client = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.smart);
        try {
          return await grpcCall(client, 'ModelInfer', { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [24, 93, 1, 105, 115, 0, 38.5] } }] }, treat, 10_000, rid('a-ok-grpc'));
        } finally {
          client.close();
        }
      }, { outcome: 'success', status: 'ok', code: 200 }],
    ];
    for (const [id, call, expected] of cases) {
      await call();
      // The answer has come back, so the record must already be in the log.
      const records = requestRecords(join(cluster.dir, 'audit')).filter((r) => r.requestId === rid(id));
      expect(records, id).toHaveLength(1);
      expect(records[0], id).toMatchObject(expected);
      sent.push({ id, expect: expected });
    }
    const ok = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('a-ok-rest'))!;
    expect(ok).toMatchObject({
      door: 'rest', route: 'infer', client: { name: 'spiffe://cdsgate.local/app/ehr-integration', thumbprint: expect.any(String) },
      principal: { sub: 'test-user', roles: ['clinician'], tokenId: expect.any(String) }, purposeOfUse: ['TREAT'], emergency: false,
      model: { name: 'news2', version: '1', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }, node: 'node-0',
      inputDigest: expect.stringMatching(/^hmac-sha256:dev1:[0-9a-f]{64}$/),
      request: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], phi: 'none' }] },
    });
    expect(JSON.stringify(ok.request)).not.toContain('38.5');
    const grpcRecord = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('a-ok-grpc'))!;
    expect(grpcRecord.inputDigest).toBe(ok.inputDigest); // same input, same digest, either door
    const noToken = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('a-no-token'))!;
    expect(noToken.principal).toBeNull();
    expect(noToken.client.name).toBe('spiffe://cdsgate.local/app/ehr-integration');
    // One request at a time, each sent to the node: its dispatch record (who sent whose data where, and why) went to
    // disk while the node worked, before its own record, with the same facts. Refused requests reached no node.
    const all = auditRecords(join(cluster.dir, 'audit'));
    for (const id of ['a-ok-rest', 'a-ok-grpc']) {
      const at = (type: string) => all.findIndex((r) => r.type === type && r.requestId === rid(id));
      expect(all.filter((r) => r.type === 'dispatch' && r.requestId === rid(id)), id).toHaveLength(1);
      expect(at('dispatch'), id).toBeGreaterThan(-1);
      expect(at('dispatch'), id).toBeLessThan(at('request'));
      const [dispatch, own] = [all[at('dispatch')]!, all[at('request')]!];
      expect(dispatch, id).toMatchObject({ door: own.door, route: 'infer', client: own.client, principal: own.principal, purposeOfUse: own.purposeOfUse, emergency: false, model: { name: 'news2' }, sentTo: ['node-0'], patients: own.patients, inputDigest: own.inputDigest });
      expect(dispatch.request, id).toBeUndefined();
    }
    const refused = cases.map(([id]) => rid(id)).filter((id) => id !== rid('a-ok-rest') && id !== rid('a-ok-grpc'));
    expect(all.filter((r) => r.type === 'dispatch' && refused.includes(r.requestId))).toEqual([]);
  });

  it('break-the-glass: allowed, alerted, counted and marked', async () => {
    const btg = await cluster.token(['physician'], { claims: { extensions: { ihe_iua: { purpose_of_use: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }] } } } });
    const res = await rest('a-btg', '/v2/models/news2/infer', { token: btg, body: VITALS });
    expect(res.status).toBe(200);
    const record = requestRecords(join(cluster.dir, 'audit')).find((r) => r.requestId === rid('a-btg'))!;
    expect(record).toMatchObject({ emergency: true, breakTheGlass: true, purposeOfUse: ['BTG'], outcome: 'success' });
    await waitFor(() => jsonLogs(cluster.gateway).some((l) => l.alert === 'emergency_access' && l.requestId === rid('a-btg')), 5000, 'the alert line');
    expect(jsonLogs(cluster.gateway).find((l) => l.requestId === rid('a-btg') && l.alert)).toMatchObject({ level: 40, kind: 'break_the_glass', subject: 'test-user', model: 'news2' });
    const metrics = await scrapeMetrics(cluster.gateway.ports.admin!);
    expect(metrics).toMatch(/cdsgate_emergency_access_total\{model="news2",kind="break_the_glass"\} 1/);
    // The record was synced before the answer, and its sync is counted (the disk's share of the latency).
    expect(metrics).toMatch(/cdsgate_audit_fsync_seconds_count\{placement="(loop|pool)"\} [1-9]/);
    const notAllowed = await rest('a-btg-wrong-role', '/v2/models/news2/infer', { token: await cluster.token(['billing'], { claims: { purpose_of_use: 'BTG' } }), body: VITALS });
    expect(notAllowed.status).toBe(403);
  });

  it("gRPC: every call on a connection is recorded with that connection's certificate, two connections interleaved", async () => {
    // The peer certificate is read once per connection (readPeerCertificateOnce): the cache must never cross connections.
    const treat = await cluster.token(['clinician'], { claims: { purpose_of_use: 'TREAT' } });
    const ehr = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.ehr);
    const smart = grpcClient(cluster.gateway.ports.grpc!, cluster.pki.ca, cluster.pki.apps.smart);
    const request = { model_name: 'news2', inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], contents: { fp32_contents: [24, 93, 1, 105, 115, 0, 38.5] } }] };
    try {
      const calls = Array.from({ length: 12 }, (_, i) => {
        const [client, who] = i % 2 === 0 ? [ehr, 'ehr'] : [smart, 'smart'];
        return grpcCall(client, 'ModelInfer', request, treat, 10_000, rid(`a-peer-${who}-${i}`));
      });
      await Promise.all(calls);
    } finally {
      ehr.close();
      smart.close();
    }
    const ids = Array.from({ length: 12 }, (_, i) => rid(`a-peer-${i % 2 === 0 ? 'ehr' : 'smart'}-${i}`));
    const records = requestRecords(join(cluster.dir, 'audit')).filter((r) => ids.includes(r.requestId));
    expect(records).toHaveLength(12);
    ids.forEach((id, i) => {
      const record = records.find((r) => r.requestId === id)!;
      expect(record.client.name, String(i)).toBe(i % 2 === 0 ? 'spiffe://cdsgate.local/app/ehr-integration' : 'spiffe://cdsgate.local/app/smart-app');
    });
    const thumbprints = new Set(records.map((r) => `${r.client.name} ${r.client.thumbprint}`));
    expect(thumbprints.size).toBe(2);
  });

  it('no token and no payload value reaches the audit files', async () => {
    const treat = await cluster.token(['clinician'], { claims: { purpose_of_use: 'TREAT' } });
    await rest('a-marker', '/v2/models/news2/infer', { token: treat, body: { inputs: [{ name: 'vitals', datatype: 'FP32', shape: [1, 7], data: [16, 97, 0, 120, 70, 0, 36.987] }] } });
    const text = auditText(join(cluster.dir, 'audit'));
    expect(text).not.toContain(treat.split('.')[2]!);
    expect(text).not.toContain('36.987');
  });

  it('after a clean stop the log verifies with the trusted key and exports as FHIR AuditEvents; an edit is named', async () => {
    await cluster.stop(true);
    const dir = join(cluster.dir, 'audit');
    const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, dir]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/audit log verifies: \d+ records .*, 0 record\(s\) after the last one/);

    const exported = await runCliAsync(['audit', 'export', '--format', 'fhir', dir]);
    expect(exported.code).toBe(0);
    const events = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.length).toBe(requestRecords(dir).length);
    const btg = events.find((e) => e.id === rid('a-btg'));
    expect(btg).toMatchObject({ resourceType: 'AuditEvent', action: 'E', outcome: '0', purposeOfEvent: [{ coding: [{ code: 'BTG' }] }] });
    expect(btg.agent.find((a: any) => a.requestor).who.identifier.value).toBe('test-user');
    expect(btg.agent.find((a: any) => a.network)?.network.address).toBe('127.0.0.1');
    expect(btg.entity.find((e: any) => e.type.code === '2').detail).toContainEqual({ type: 'emergency-access', valueString: 'break-the-glass' });
    expect(events.find((e) => e.id === rid('a-no-token')).outcome).toBe('4');

    const { readFileSync, writeFileSync } = await import('node:fs');
    const file = join(dir, 'audit-000001.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes(`"${rid('a-no-purpose')}"`));
    lines[i] = lines[i]!.replace('"outcome":"failure"', '"outcome":"success"');
    writeFileSync(file, lines.join('\n'));
    const tampered = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, dir]);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(new RegExp(`record ${JSON.parse(lines[i]!).seq} \\(audit-000001\\.jsonl:${i + 1}\\) was modified`));
  });
});

describe('audit: one gateway per audit directory', () => {
  it('a second gateway given a running one\'s audit directory does not start, and says which gateway holds it; the first goes on serving', async () => {
    const cluster = await startCluster({ nodes: 1 });
    try {
      const { readFileSync, writeFileSync } = await import('node:fs');
      const { spawnCdsgate } = await import('../../src/cli/processes.js');
      const config = JSON.parse(readFileSync(join(cluster.dir, 'gateway.json'), 'utf8'));
      const lines: string[] = [];
      writeFileSync(join(cluster.dir, 'gateway-second.json'), JSON.stringify(config));
      const second = spawnCdsgate('gateway', join(cluster.dir, 'gateway-second.json'), (line) => lines.push(line), CLI);
      await expect(second.ready).rejects.toThrow(/exited with code [1-9]/);
      expect(lines.join('\n')).toMatch(new RegExp(`being written by another gateway \\(pid ${cluster.gateway.child.pid} `));
      const token = await cluster.token(['clinician']);
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: VITALS });
      expect(res.status).toBe(200);
      const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, config.audit.dir]);
      expect(verify.code, verify.stderr).toBe(0);
    } finally {
      await cluster.stop();
    }
  });
});

describe('audit: fail closed', () => {
  it('when the audit log cannot be written, requests are refused with 503 and the gateway reports not ready', async () => {
    let auditDir = '';
    const cluster = await startCluster({
      nodes: 1,
      gatewayPatch: (c) => {
        // Rotate after every batch into a path that is a directory: the second file cannot be opened.
        c.audit.rotateBytes = 1;
        auditDir = c.audit.dir;
        mkdirSync(join(auditDir, 'audit-000002.jsonl'), { recursive: true });
      },
    }).catch((err: unknown) => { throw err; });
    try {
      const token = await cluster.token(['clinician']);
      const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: VITALS });
      expect(res.status).toBe(503);
      expect(res.json().error).toMatch(/audit log cannot record this request/);
      const ready = await httpsCall(cluster.gateway.ports.rest!, '/v2/health/ready', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr });
      expect(ready.status).toBe(503);
      // One refused request, one failure counted (its dispatch record's failed append is not counted apart).
      expect(await scrapeMetrics(cluster.gateway.ports.admin!)).toMatch(/^cdsgate_audit_write_failures_total 1$/m);
    } finally {
      await cluster.stop();
    }
  });
});

describe('audit: kill -9 under load', () => {
  it('the chain verifies up to the last complete record and every answered request has its record', async () => {
    const cluster = await startCluster({ nodes: 1 });
    const auditDir = join(cluster.dir, 'audit');
    const token = await cluster.token(['clinician']);
    const succeeded: string[] = [];
    let stop = false;
    let n = 0;
    const worker = async () => {
      while (!stop && n < 2000) {
        const id = `k-${n++}`;
        try {
          const res = await httpsCall(cluster.gateway.ports.rest!, '/v2/models/news2/infer', { ca: cluster.pki.ca, identity: cluster.pki.apps.ehr, token, body: VITALS, headers: { 'x-request-id': rid(id) } });
          if (res.status === 200) succeeded.push(rid(id));
        } catch { /* the gateway died mid-request: no answer, no promise */ }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await waitFor(() => succeeded.length >= 60, 20_000, '60 answered requests');
    await stopProcess(cluster.gateway, 'SIGKILL');
    stop = true;
    await Promise.all(workers);
    try {
      // Its own record, not just its dispatch record: a record written before the answer survives the process.
      const recorded = new Set(requestRecords(auditDir).map((r) => r.requestId));
      expect(succeeded.filter((id) => !recorded.has(id))).toEqual([]);
      const verify = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, auditDir]);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/after the last signed checkpoint|after the last one/);

      // A restarted gateway continues the same chain and says what happened.
      const restarted = await startProcess('gateway', JSON.parse((await import('node:fs')).readFileSync(join(cluster.dir, 'gateway.json'), 'utf8')), cluster.dir, 'gateway-restarted');
      await stopProcess(restarted);
      expect(auditRecords(auditDir).some((r) => r.type === 'recovered')).toBe(true);
      const again = await runCliAsync(['audit', 'verify', '--public-key', cluster.secrets.auditPublicKey, auditDir]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/0 record\(s\) after the last one/);
    } finally {
      await cluster.stop();
    }
  });
});
