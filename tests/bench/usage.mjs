// Usage benchmark (docs/performance.md, "Usage"): ingestion through the gateway in
// batches of 10 000 and 1 000 samples (samples/s), the account-details and stored-data
// reports for an MSP with many customers and a year of daily usage (p50/p95), and the
// billing export (rows/s, open and frozen, with the usage service's peak RSS).
// Run by tests/bench/usage (Release build); prints figures, asserts nothing about time.
//
//   BENCH_CUSTOMERS=10000 BENCH_DAYS=365 BENCH_BATCHES=20 node tests/bench/usage.mjs
import { readFileSync } from 'node:fs';
import { startStack } from '../e2e/lib/stack.mjs';
import { apiClient, jsonApi } from '../e2e/lib/api.mjs';
import { sql } from '../e2e/lib/identity.mjs';

const customers = Number(process.env.BENCH_CUSTOMERS || 10000);
const days = Number(process.env.BENCH_DAYS || 365);
const batches = Number(process.env.BENCH_BATCHES || 20);
const reportRuns = Number(process.env.BENCH_REPORT_RUNS || 30);
const say = (...a) => console.error('[bench]', ...a);
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const rss = (stack, name) => {
  const pid = stack.procs.get(name)?.child?.pid;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: (kb('VmRSS') / 1024).toFixed(1), hwm: (kb('VmHWM') / 1024).toFixed(1) };
};

const stack = await startStack({ env: { CONSOLE_RATE_LIMIT_RPS: '0', CONSOLE_UPSTREAM_TIMEOUT_MS: '300000' } });
const rows = [];
try {
  const platform = jsonApi(stack, await stack.token());
  const msp = (await platform('POST', '/api/v1/tenants', { name: 'Bench MSP', kind: 'msp' })).json;
  say(`inserting ${customers} customers`);
  for (let from = 1; from <= customers; from += 1000) // chunks: each psql call has 30 s
    await sql(stack, `INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)
      SELECT g.id, p.id, 'customer', 'Customer ' || g.n, 'customer ' || g.n, p.path || replace(g.id::text, '-', ''), p.msp_id
      FROM tenants.tenants p, (SELECT n, gen_random_uuid() AS id FROM generate_series(${from}, ${Math.min(customers, from + 999)}) n) g
      WHERE p.id = :'p1'`, [msp.id]);
  const ids = (await sql(stack, `SELECT id FROM tenants.tenants WHERE parent_id = :'p1' ORDER BY name_key`, [msp.id])).split('\n');
  const writerToken = (await apiClient(stack, 'bench-writer', 'usage_writer')).accessToken;
  const post = (body) => stack.request('/api/v1/usage/samples', { method: 'POST', auth: writerToken, headers: { 'content-type': 'application/json' }, body, timeoutMs: 600000 });
  const adminToken = (await apiClient(stack, 'bench-admin', 'msp_admin', msp.id)).accessToken;
  const admin = jsonApi(stack, adminToken);

  // ---- ingestion: each batch a new value for 10 000 (or 1 000) sources ----
  for (const size of [10000, 1000]) {
    const n = size === 10000 ? batches : batches * 4;
    let t0 = Date.now() - 86400e3;
    let samples = 0;
    const times = [];
    for (let b = 0; b < n; b++) {
      const at = new Date(t0 + b * 1000).toISOString();
      const body = JSON.stringify(Array.from({ length: size }, (_, i) => ({
        tenant_id: ids[i % ids.length], resource: 'cloud_storage', source_id: `src-${size}-${i}`, used_bytes: 1e9 + b * 1000 + i, at,
      })));
      const s0 = process.hrtime.bigint();
      const r = await post(body);
      times.push(Number(process.hrtime.bigint() - s0) / 1e6);
      if (r.status !== 200) throw new Error(`ingest: ${r.status} ${r.text}`);
      samples += size;
    }
    const total = times.reduce((a, x) => a + x, 0);
    rows.push([`ingest, batches of ${size} (${n} batches, 1 client, sequential)`, `${Math.round(samples / (total / 1000))} samples/s`,
      `p50 ${pct(times, 50).toFixed(0)} ms, p95 ${pct(times, 95).toFixed(0)} ms per batch`]);
    say(rows.at(-1).join(' | '));
  }

  // ---- a year of daily usage for every customer, written straight into the rollup ----
  say(`inserting ${customers} x ${days} days of daily usage`);
  for (let from = 0; from < days; from += 30)
    await sql(stack, `INSERT INTO usage.daily_usage (tenant_id, resource, day, msp_id, used_bytes)
      SELECT t.id, r.res, (now() AT TIME ZONE 'UTC')::date - d, t.msp_id, (1e9 + d * 1e6 + abs(hashtext(t.id::text)) % 1000000)::bigint
      FROM tenants.tenants t, generate_series(${from}, ${Math.min(days, from + 30) - 1}) d, (VALUES ('cloud_storage'), ('datastore')) r(res)
      WHERE t.parent_id = :'p1' ON CONFLICT DO NOTHING`, [msp.id]);
  await sql(stack, `INSERT INTO usage.tenant_usage (tenant_id, resource, msp_id, used_bytes)
    SELECT t.id, r.res, t.msp_id, 5e9 FROM tenants.tenants t, (VALUES ('cloud_storage'), ('datastore')) r(res)
    WHERE t.parent_id = :'p1' ON CONFLICT DO NOTHING; ANALYZE usage.daily_usage; ANALYZE usage.tenant_usage`, [msp.id]);
  for (const [name, path] of [
    ['account-details (JSON)', `/api/v1/reports/account-details?parent_id=${msp.id}`],
    ['account-details (CSV, sort -quota_used_pct)', `/api/v1/reports/account-details?parent_id=${msp.id}&format=csv&sort=-quota_used_pct`],
    ['stored-data (30-day peak from the rollup)', `/api/v1/reports/stored-data?parent_id=${msp.id}`],
  ]) {
    const times = [];
    for (let i = 0; i < reportRuns; i++) {
      const s0 = process.hrtime.bigint();
      const r = await stack.request(path, { auth: adminToken, timeoutMs: 600000 });
      times.push(Number(process.hrtime.bigint() - s0) / 1e6);
      if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.text}`);
    }
    rows.push([`${name}, ${customers} customers x ${days} days`, `p50 ${pct(times, 50).toFixed(1)} ms`, `p95 ${pct(times, 95).toFixed(1)} ms`]);
    say(rows.at(-1).join(' | '));
  }

  // ---- billing export: one line per customer and resource ----
  await admin('PUT', `/api/v1/tenants/${msp.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD', tax_rate_pct: '10' });
  const now = new Date();
  const closed = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1)).toISOString().slice(0, 7);
  const open = now.toISOString().slice(0, 7);
  for (const [name, period] of [[`open month ${open} (computed)`, open], [`closed month ${closed} (first fetch: freeze)`, closed], [`closed month ${closed} (frozen)`, closed]]) {
    const s0 = process.hrtime.bigint();
    const r = await stack.request(`/api/v1/billing/export?period=${period}&parent_id=${msp.id}&format=csv`, { auth: adminToken, timeoutMs: 600000 });
    const ms = Number(process.hrtime.bigint() - s0) / 1e6;
    if (r.status !== 200) throw new Error(`export: ${r.status} ${r.text}`);
    const lines = r.text.split('\r\n').length - 2;
    const m = rss(stack, 'usage');
    rows.push([`billing export, ${name}`, `${lines} lines in ${ms.toFixed(0)} ms = ${Math.round(lines / (ms / 1000))} lines/s`, `usage RSS ${m.rss} MiB (peak ${m.hwm} MiB)`]);
    say(rows.at(-1).join(' | '));
  }
} catch (e) {
  console.error('[bench] failed:', e);
  process.exitCode = 1;
} finally {
  await stack.stop().catch((e) => console.error('[bench] stop:', e.message.split('\n')[0]));
}
console.log('| what | figure | detail |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
