// Usage benchmark (docs/performance.md, "Usage"). Prints figures; asserts nothing about
// time. Each figure has its baseline measured in the same invocation:
//   * ingestion through the gateway (samples/s; batches of 10 000 and 1 000, 1 and 4
//     clients) against PostgreSQL alone inserting the same raw rows (same unique index,
//     no rollups, no HTTP);
//   * account-details and stored-data for an MSP with BENCH_CUSTOMERS customers and
//     BENCH_DAYS days of daily usage (p50/p95);
//   * the billing export (lines/s and the usage service's peak RSS, reset before each
//     export): an open month (computed), a closed month (first fetch freezes it, then
//     served as stored) and BENCH_LINES stored lines, against PostgreSQL alone writing the
//     same lines as CSV (COPY);
//   * PostgreSQL killed (SIGKILL) during a 4-client ingestion run and started again:
//     batches acknowledged vs samples stored (clients retry with their Idempotency-Keys).
//
//   BENCH_CUSTOMERS=10000 BENCH_DAYS=365 BENCH_BATCHES=20 BENCH_REPORT_RUNS=30
//   BENCH_LINES=1000000 node tests/bench/usage.mjs     (run by tests/bench/usage)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, sleep } from '../e2e/lib/stack.mjs';
import { apiClient, jsonApi } from '../e2e/lib/api.mjs';
import { sql } from '../e2e/lib/identity.mjs';

const customers = Number(process.env.BENCH_CUSTOMERS || 10000);
const days = Number(process.env.BENCH_DAYS || 365);
const batches = Number(process.env.BENCH_BATCHES || 20);
const reportRuns = Number(process.env.BENCH_REPORT_RUNS || 30);
const bigLines = Number(process.env.BENCH_LINES || 1000000);
const say = (...a) => console.error('[bench]', ...a);
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const pidOf = (stack, name) => stack.procs.get(name)?.child?.pid;
const rss = (stack, name) => {
  const status = readFileSync(`/proc/${pidOf(stack, name)}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: (kb('VmRSS') / 1024).toFixed(1), hwm: (kb('VmHWM') / 1024).toFixed(1) };
};
/** Resets the process's peak RSS (VmHWM) so the next reading is this operation's peak. */
const resetPeak = (stack, name) => writeFileSync(`/proc/${pidOf(stack, name)}/clear_refs`, '5');
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const stack = await startStack({ env: { CONSOLE_RATE_LIMIT_RPS: '0', CONSOLE_UPSTREAM_TIMEOUT_MS: '300000' } });
const rows = [];
const row = (...r) => {
  rows.push(r);
  say(r.join(' | '));
};
try {
  say(`load average at start: ${loadavg()}`);
  const platform = jsonApi(stack, await stack.token());
  const msp = (await platform('POST', '/api/v1/tenants', { name: 'Bench MSP', kind: 'msp' })).json;
  say(`inserting ${customers} customers`);
  for (let from = 1; from <= customers; from += 1000) // chunks: each psql call has 30 s
    await sql(stack, `INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)
      SELECT g.id, p.id, 'customer', 'Customer ' || g.n, 'customer ' || g.n, p.path || replace(g.id::text, '-', ''), p.msp_id
      FROM tenants.tenants p, (SELECT n, gen_random_uuid() AS id FROM generate_series(${from}, ${Math.min(customers, from + 999)}) n) g
      WHERE p.id = :'p1'`, [msp.id]);
  await sql(stack, 'ANALYZE tenants.tenants');
  const ids = (await sql(stack, `SELECT id FROM tenants.tenants WHERE parent_id = :'p1' ORDER BY name_key`, [msp.id])).split('\n');
  const writer = await apiClient(stack, 'bench-writer', 'usage_writer');
  let writerToken = writer.accessToken;
  const post = (body, key) => stack.request('/api/v1/usage/samples', {
    method: 'POST', auth: writerToken, headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) }, body, timeoutMs: 600000,
  });
  const adminClient = await apiClient(stack, 'bench-admin', 'msp_admin', msp.id);
  let adminToken = adminClient.accessToken;

  // ---- ingestion: each batch a new value for `size` sources spread over the customers ----
  let clock = Date.now() - 86400e3;
  const batch = (size, tag, b) => {
    const at = new Date((clock += 1000)).toISOString();
    return JSON.stringify(Array.from({ length: size }, (_, i) => ({
      tenant_id: ids[(i * 7 + b) % ids.length], resource: i % 3 ? 'cloud_storage' : 'datastore', source_id: `${tag}-${i}`, used_bytes: 1e9 + b * 1000 + i, at,
    })));
  };
  for (const [size, clients, n] of [[10000, 1, Math.max(2, batches / 4)], [1000, 1, batches * 2], [1000, 4, batches * 4]]) {
    const bodies = Array.from({ length: n }, (_, b) => batch(size, `s${size}c${clients}-${b % clients}`, b));
    const times = [];
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: clients }, async () => {
      for (let b; (b = next++) < n; ) {
        const s0 = process.hrtime.bigint();
        const r = await post(bodies[b]);
        times.push(Number(process.hrtime.bigint() - s0) / 1e6);
        if (r.status !== 200) throw new Error(`ingest: ${r.status} ${r.text}`);
      }
    }));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    row(`ingest through the gateway, batches of ${size}, ${clients} client${clients > 1 ? 's' : ''} (${n} batches)`,
      `${Math.round((n * size) / secs)} samples/s`, `p50 ${pct(times, 50).toFixed(0)} ms, p95 ${pct(times, 95).toFixed(0)} ms per batch`);
  }
  // baseline: PostgreSQL alone inserting batches of the same shape as raw rows (one
  // statement per batch of 1 000, the same unique index; no rollups, no HTTP, no checks)
  {
    await sql(stack, `DROP TABLE IF EXISTS usage.bench_raw; CREATE TABLE usage.bench_raw (LIKE usage.samples INCLUDING ALL)`);
    const n = batches * 2;
    const one = JSON.stringify(JSON.parse(batch(1000, 'raw', 0)).map((x) => ({ ...x, msp_id: msp.id })));
    const stmts = Array.from({ length: n }, (_, b) => `INSERT INTO usage.bench_raw (tenant_id, msp_id, resource, source_id, used_bytes, at)
      SELECT x.tenant_id, x.msp_id, x.resource, x.source_id, x.used_bytes, x.at + ${b} * interval '1 second'
      FROM jsonb_to_recordset(:'b'::jsonb) AS x(tenant_id uuid, msp_id uuid, resource text, source_id text, used_bytes bigint, at timestamptz);`);
    const file = join(stack.dataDir, 'bench-batch.json'); // one argument may not exceed 128 KiB
    writeFileSync(file, one);
    const out = await sql(stack, `\\set b \`cat ${file}\`\n\\timing on\n${stmts.join('\n')}`);
    const ms = [...out.matchAll(/Time: ([\d.]+) ms/g)].map((m) => Number(m[1]));
    row(`baseline: PostgreSQL alone, the same batches of 1 000 inserted as raw rows (same unique index; no rollups, no HTTP)`,
      `${Math.round((ms.length * 1000) / (ms.reduce((a, x) => a + x, 0) / 1000))} rows/s`, `p50 ${pct(ms, 50).toFixed(1)} ms per batch (${ms.length} batches)`);
    await sql(stack, 'DROP TABLE usage.bench_raw');
  }

  // ---- a year of daily usage for every customer, written straight into the rollup ----
  say(`inserting ${customers} x ${days} days of daily usage`);
  for (let from = 0; from < days; from += 30)
    await sql(stack, `INSERT INTO usage.daily_usage (tenant_id, resource, day, msp_id, used_bytes)
      SELECT t.id, r.res, (now() AT TIME ZONE 'UTC')::date - d, t.msp_id, (1e9 + d * 1e6 + abs(hashtext(t.id::text)) % 1000000)::bigint
      FROM tenants.tenants t, generate_series(${from}, ${Math.min(days, from + 30) - 1}) d, (VALUES ('cloud_storage'), ('datastore')) r(res)
      WHERE t.parent_id = :'p1' ON CONFLICT DO NOTHING`, [msp.id]);
  await sql(stack, `INSERT INTO usage.tenant_totals (tenant_id, msp_id, cloud_usage_bytes, datastore_usage_bytes)
    SELECT t.id, t.msp_id, 5e9, 4e9 FROM tenants.tenants t WHERE t.parent_id = :'p1' ON CONFLICT DO NOTHING;
    INSERT INTO quotas.quotas (tenant_id, msp_id, resource, limit_bytes)
    SELECT t.id, t.msp_id, 'cloud_storage', 2e11 FROM tenants.tenants t WHERE t.parent_id = :'p1' ON CONFLICT DO NOTHING;
    ANALYZE usage.daily_usage; ANALYZE usage.tenant_totals; ANALYZE quotas.quotas`, [msp.id]).catch((e) => say(`quotas not seeded: ${e.message.split('\n')[0]}`));
  adminToken = await adminClient.token();
  for (const [name, path] of [
    ['account-details (JSON, all customers)', `/api/v1/reports/account-details?parent_id=${msp.id}`],
    ['account-details (CSV, sort -quota_used_pct)', `/api/v1/reports/account-details?parent_id=${msp.id}&format=csv&sort=-quota_used_pct`],
    ['account-details (JSON, search q=99)', `/api/v1/reports/account-details?parent_id=${msp.id}&q=99`],
    ['stored-data (30-day peak from the rollup)', `/api/v1/reports/stored-data?parent_id=${msp.id}`],
  ]) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < reportRuns; i++) {
      const s0 = process.hrtime.bigint();
      const r = await stack.request(path, { auth: adminToken, timeoutMs: 600000 });
      times.push(Number(process.hrtime.bigint() - s0) / 1e6);
      if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.text}`);
      bytes = r.text.length;
    }
    row(`${name}, ${customers} customers x ${days} days`, `p50 ${pct(times, 50).toFixed(1)} ms, p95 ${pct(times, 95).toFixed(1)} ms`, `${(bytes / 1e6).toFixed(2)} MB per answer, ${reportRuns} runs`);
  }

  // ---- billing export: one line per customer and resource ----
  const admin = jsonApi(stack, adminToken);
  await admin('PUT', `/api/v1/tenants/${msp.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD', tax_rate_pct: '10' });
  const now = new Date();
  const closed = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1)).toISOString().slice(0, 7);
  const open = now.toISOString().slice(0, 7);
  const exportRun = async (name, period) => {
    resetPeak(stack, 'usage');
    const before = rss(stack, 'usage').rss;
    const s0 = process.hrtime.bigint();
    const r = await stack.request(`/api/v1/billing/export?period=${period}&parent_id=${msp.id}&format=csv`, { auth: adminToken, timeoutMs: 900000 });
    const ms = Number(process.hrtime.bigint() - s0) / 1e6;
    if (r.status !== 200) throw new Error(`export: ${r.status} ${r.text}`);
    const lines = r.text.split('\r\n').length - 2;
    const m = rss(stack, 'usage');
    row(`billing export, ${name}`, `${lines} lines in ${ms.toFixed(0)} ms = ${Math.round(lines / (ms / 1000))} lines/s`, `usage service RSS ${before} MiB before, peak ${m.hwm} MiB during the export`);
    return r.text;
  };
  await exportRun(`open month ${open} (computed on each fetch)`, open);
  await exportRun(`closed month ${closed}, first fetch (computes and freezes)`, closed);
  await exportRun(`closed month ${closed}, frozen (served as stored)`, closed);

  // BENCH_LINES stored lines of a closed period (as a freeze writes them), served as stored
  const big = `${now.getUTCFullYear() - 2}-01`;
  say(`writing ${bigLines} frozen lines for ${big}`);
  const mspPath = await sql(stack, `SELECT path FROM tenants.tenants WHERE id = :'p1'`, [msp.id]);
  for (let from = 0; from < bigLines; from += 200000)
    await sql(stack, `INSERT INTO usage.billing_lines (period, tenant_id, resource, msp_id, tenant_name, tenant_path, measure, usage_bytes, days,
        billable_units, unit, unit_price, amount, discount_pct, discount_amount, tax_rate_pct, tax_amount, total_amount, currency, plan_tenant_id, plan_version)
      SELECT '${big}', md5(g::text)::uuid, r.res, :'p1', 'Customer ' || g, (:'p2' || '.x' || g)::ltree, 'peak', 123456789012, 31,
        123.457, 'GB', 0.05, 6.17, NULL, 0, 10, 0.62, 6.79, 'USD', :'p1', 1
      FROM generate_series(${from / 2 + 1}, ${Math.min(bigLines, from + 200000) / 2}) g, (VALUES ('cloud_storage'), ('datastore')) r(res)`, [msp.id, mspPath]);
  await sql(stack, `INSERT INTO usage.billing_frozen (msp_id, period) VALUES (:'p1', '${big}'); ANALYZE usage.billing_lines`, [msp.id]);
  adminToken = await adminClient.token();
  for (let i = 0; i < 2; i++) await exportRun(`${big}: ${bigLines} stored lines (run ${i + 1})`, big);
  {
    // baseline: PostgreSQL alone writing the same lines as CSV (COPY to psql's /dev/null)
    const s0 = process.hrtime.bigint();
    await sql(stack, "\\copy (SELECT period, tenant_id, tenant_name, resource, billable_units, unit, unit_price, amount, currency, measure, usage_bytes, days, discount_pct, discount_amount, tax_rate_pct, tax_amount, total_amount, plan_version FROM usage.billing_lines WHERE period = '" + big + "' AND tenant_path <@ '" + mspPath + "'::ltree ORDER BY tenant_name, tenant_id, resource) TO '/dev/null' CSV");
    const ms = Number(process.hrtime.bigint() - s0) / 1e6;
    row(`baseline: PostgreSQL alone, COPY of the same ${bigLines} lines as CSV (psql to /dev/null)`, `${Math.round(bigLines / (ms / 1000))} lines/s`, `${ms.toFixed(0)} ms`);
  }

  // ---- PostgreSQL killed during ingestion ----
  {
    const clients = 4, n = batches, size = 1000;
    let failures = 0, acked = 0, crashedAt = 0, backAt = 0;
    writerToken = await writer.token();
    const t0 = process.hrtime.bigint();
    const crash = (async () => {
      await sleep(1500);
      const pid = Number(readFileSync(join(stack.pgDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      for (const p of [pid, ...kids]) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      crashedAt = Date.now();
      await sleep(2000);
      await stack.pg('start');
      backAt = Date.now();
    })();
    await Promise.all(Array.from({ length: clients }, async (_, c) => {
      for (let b = 0; b < n; b++) {
        const body = batch(size, `crash-c${c}`, b), key = `crash-${c}-${b}`;
        for (;;) {
          const r = await post(body, key).catch(() => ({ status: 0 }));
          if (r.status === 200) break;
          failures++;
          await sleep(250);
        }
        acked++;
      }
    }));
    await crash;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const stored = Number(await sql(stack, `SELECT count(*) FROM usage.samples WHERE source_id LIKE 'crash-%'`));
    row(`PostgreSQL killed (SIGKILL) during ingestion, 4 clients x ${n} batches of ${size}, down ${((backAt - crashedAt) / 1000).toFixed(1)} s`,
      `${acked * size} samples acknowledged, ${stored} stored`, `${failures} failed requests retried with their Idempotency-Keys; ${Math.round((acked * size) / secs)} samples/s overall`);
  }
  say(`load average at end: ${loadavg()}`);
} catch (e) {
  console.error('[bench] failed:', e);
  process.exitCode = 1;
} finally {
  await stack.stop().catch((e) => console.error('[bench] stop:', e.message.split('\n')[0]));
}
console.log('| what | figure | detail |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
