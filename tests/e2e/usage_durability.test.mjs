// PostgreSQL killed (SIGKILL, no shutdown) in the middle of an ingestion run and started
// again: every batch the service acknowledged is stored, and the clients' retries of the
// others with their Idempotency-Keys store each of them exactly once (issue 7, "kill
// PostgreSQL during an ingestion run"). The counts are asserted, never the timing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, sleep } from './lib/stack.mjs';
import { apiClient, jsonApi } from './lib/api.mjs';
import { sql } from './lib/identity.mjs';

const s = useStack();
const CLIENTS = 4;
const BATCHES = 12; // per client
const SIZE = 200; // samples per batch

/** Kills the cluster's postmaster and every backend with SIGKILL: a crash, not a stop. */
function crashPostgres(stack) {
  const pid = Number(readFileSync(join(stack.pgDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  process.kill(pid, 'SIGKILL');
  for (const c of children) {
    try {
      process.kill(c, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

describe('ingestion survives a PostgreSQL crash', () => {
  test('every acknowledged sample is stored, and retried batches count once', async () => {
    const platform = jsonApi(s.stack, await s.stack.token());
    const msp = (await platform('POST', '/api/v1/tenants', { name: 'Durable MSP', kind: 'msp' })).json;
    const customers = [];
    for (let i = 0; i < 8; i++)
      customers.push((await platform('POST', '/api/v1/tenants', { name: `Durable ${i}`, kind: 'customer', parent_id: msp.id })).json.id);
    const writer = await apiClient(s.stack, 'durable-writer', 'usage_writer');
    let token = writer.accessToken;

    const t0 = Date.now() - 3600e3;
    let failures = 0;
    let crashed = false;

    async function post(key, body) {
      for (const deadline = Date.now() + 90000; Date.now() < deadline; ) {
        let r;
        try {
          r = await s.stack.request('/api/v1/usage/samples', {
            method: 'POST',
            auth: token,
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body,
            timeoutMs: 20000,
          });
        } catch {
          r = { status: 0 };
        }
        if (r.status === 200) return r;
        if (r.status === 401) token = await writer.token().catch(() => token);
        failures++;
        await sleep(200);
      }
      throw new Error(`batch ${key} never stored`);
    }

    async function client(c) {
      for (let b = 0; b < BATCHES; b++) {
        const key = `durable-${c}-${b}`;
        const at = new Date(t0 + (c * BATCHES + b) * 1000).toISOString();
        const body = JSON.stringify(Array.from({ length: SIZE }, (_, i) => ({
          tenant_id: customers[(c + i) % customers.length],
          resource: i % 2 ? 'cloud_storage' : 'datastore',
          source_id: `c${c}-s${i}`,
          used_bytes: 1e9 + b * 1000 + i,
          at,
        })));
        const answer = await post(key, body); // acknowledged, after retries if need be
        assert.equal(answer.json.accepted, SIZE);
        if (c === 0 && b === 3 && !crashed) {
          // the crash lands while the other clients' batches are in flight
          crashed = true;
          crashPostgres(s.stack);
          await sleep(1000);
          await s.stack.pg('start');
        }
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    assert.ok(crashed, 'PostgreSQL was killed during the run');
    assert.ok(failures > 0, 'some requests failed while PostgreSQL was down, and were retried');

    // every batch stored exactly once: the acknowledged ones, and the retried ones once
    const stored = Number(await sql(s.stack, `SELECT count(*) FROM usage.samples WHERE msp_id = :'p1'`, [msp.id]));
    assert.equal(stored, CLIENTS * BATCHES * SIZE);
    assert.equal(Number(await sql(s.stack, `SELECT count(*) FROM usage.idempotency_keys WHERE key LIKE 'durable-%'`)), CLIENTS * BATCHES);
    // the maintained figures agree with a recount from the last values
    const differing = await sql(s.stack, `SELECT (SELECT count(*) FROM usage.tenant_usage tu WHERE tu.msp_id = :'p1' AND tu.used_bytes <>
        (SELECT coalesce(sum(su.used_bytes), 0) FROM usage.source_usage su WHERE su.tenant_id = tu.tenant_id AND su.resource = tu.resource))
      + (SELECT count(*) FROM usage.tenant_totals tt WHERE tt.msp_id = :'p1' AND tt.sources_total <> (SELECT count(*) FROM usage.sources so WHERE so.tenant_id = tt.tenant_id))`, [msp.id]);
    assert.equal(differing, '0');
    // each source's last value is its last batch's
    const last = await sql(s.stack, `SELECT count(*) FROM usage.source_usage WHERE msp_id = :'p1' AND used_bytes >= 1e9 + ${(BATCHES - 1) * 1000}`, [msp.id]);
    assert.equal(Number(last), CLIENTS * SIZE);
  });
});
