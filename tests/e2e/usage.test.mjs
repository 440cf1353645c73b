// Quotas, usage ingestion, reports and billing through the real gateway and the real
// stack: a customer with a 200 GB quota shows usage and percentage in the account-details
// report (JSON and CSV), threshold alerts once per upward crossing (audit, outbox, mail in
// the admin's language), a hard quota refuses growth but not shrinking, replays do not
// double count, a closed month's billing CSV matches docs/billing.md by hand and is the
// same bytes on every fetch, every bad input of the issue is refused, and one MSP never
// sees another's usage, reports, quotas or billing.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { useStack, waitFor } from './lib/stack.mjs';
import { assertProblem, apiClient, jsonApi } from './lib/api.mjs';
import { readMails, sql, stageUser } from './lib/identity.mjs';

const s = useStack();
const GB = 1000 ** 3;
const iso = (ms) => new Date(ms).toISOString();
const sample = (tenant_id, used_bytes, source_id = 'vm-1', resource = 'cloud_storage', at = iso(Date.now() - 1000)) => ({
  tenant_id, resource, source_id, used_bytes, at,
});
/** POSTs a JSON body with node:http; resolves {status, text} even if the server stops reading. */
function rawPost(stack, path, token, body) {
  const url = new URL(path, stack.url);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    // a reset after the answer is fine; without an answer it fails the assertion, not hangs
    req.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? setTimeout(() => resolve({ status: 0, text: e.code }), 3000) : reject(e)));
    req.end(body);
  });
}
const ACCOUNT_COLUMNS = ['name', 'status', 'cloud_usage_bytes', 'cloud_quota_bytes', 'datastore_usage_bytes', 'datastore_quota_bytes',
  'quota_used_pct', 'created_at', 'agent_sources', 'agentless_sources', 'unc_sources'];

describe('usage, quotas, reports and billing', () => {
  let writerTok, platform, mspA, mspB, a1, a2, b1, writer, writerA, adminA, adminATok, adminB, jaAdmin;
  let seq = 0;
  const at = () => iso(Date.now() - 60000 + seq++); // distinct, increasing sample times
  before(async () => {
    platform = jsonApi(s.stack, await s.stack.token());
    mspA = (await platform('POST', '/api/v1/tenants', { name: 'Usage MSP A', kind: 'msp' })).json;
    mspB = (await platform('POST', '/api/v1/tenants', { name: 'Usage MSP B', kind: 'msp' })).json;
    a1 = (await platform('POST', '/api/v1/tenants', { name: '顧客会社A', kind: 'customer', parent_id: mspA.id })).json;
    a2 = (await platform('POST', '/api/v1/tenants', { name: 'Acme, "East"', kind: 'customer', parent_id: mspA.id })).json;
    b1 = (await platform('POST', '/api/v1/tenants', { name: 'Beta One', kind: 'customer', parent_id: mspB.id })).json;
    writerTok = (await apiClient(s.stack, 'usage-writer', 'usage_writer')).accessToken;
    writer = jsonApi(s.stack, writerTok);
    writerA = jsonApi(s.stack, (await apiClient(s.stack, 'usage-writer-a', 'msp_usage_writer', mspA.id)).accessToken);
    adminATok = (await apiClient(s.stack, 'usage-admin-a', 'msp_admin', mspA.id)).accessToken;
    // the MSP's brand: its alert mails wear it
    const brand = await platform('PUT', `/api/v1/tenants/${mspA.id}/branding`, { product_name: 'Acme Backup', sender_name: 'Acme Alerts', support_email: 'support@acme.example' });
    assert.ok(brand.status < 300, brand.text);
    adminA = jsonApi(s.stack, adminATok);
    adminB = jsonApi(s.stack, (await apiClient(s.stack, 'usage-admin-b', 'msp_admin', mspB.id)).accessToken);
    // an MSP admin who reads Japanese, to receive the alerts
    jaAdmin = await stageUser(s.stack, { language: 'ja', first: '花子', last: '山田', tenantId: mspA.id });
    await sql(s.stack, `UPDATE users.users SET status = 'active' WHERE id = :'p1'`, [jaAdmin.id]);
    await sql(s.stack, `INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id, created_by)
      VALUES (gen_random_uuid(), :'p1', 'user', 'msp_admin', :'p2', :'p2', 'e2e')`, [jaAdmin.id, mspA.id]);
  }, { timeout: 90000 });

  test('a 200 GB quota: usage and percentage in account details, JSON and CSV with a BOM', async () => {
    const q = await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 200 * GB, enforcement: 'track', alert_thresholds_pct: [75, 90, 100] });
    assert.equal(q.status, 200, q.text);
    assert.equal(q.json.limit_bytes, 200 * GB);
    assert.deepEqual(q.json.alert_thresholds_pct, [75, 90, 100]);
    const r = await writer('POST', '/api/v1/usage/samples', [sample(a1.id, 100 * GB, 'vm-1', 'cloud_storage', at()), sample(a1.id, 50 * GB, 'vm-2', 'cloud_storage', at()), sample(a1.id, 7 * GB, 'nas', 'datastore', at())]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accepted, 3);
    const list = await adminA('GET', `/api/v1/tenants/${a1.id}/quotas`);
    assert.equal(list.status, 200, list.text);
    const cloud = list.json.items.find((x) => x.resource === 'cloud_storage');
    assert.equal(cloud.used_bytes, 150 * GB);
    assert.equal(cloud.used_pct, 75);
    const rep = await adminA('GET', `/api/v1/reports/account-details?parent_id=${mspA.id}&q=${encodeURIComponent('顧客')}`);
    assert.equal(rep.status, 200, rep.text);
    assert.equal(rep.json.total, 1);
    const row = rep.json.items[0];
    assert.deepEqual(Object.keys(row), ACCOUNT_COLUMNS);
    assert.equal(row.name, '顧客会社A');
    assert.equal(row.cloud_usage_bytes, 150 * GB);
    assert.equal(row.cloud_quota_bytes, 200 * GB);
    assert.equal(row.datastore_usage_bytes, 7 * GB);
    assert.equal(row.datastore_quota_bytes, null);
    assert.equal(row.quota_used_pct, 75);
    const csv = await adminA('GET', `/api/v1/reports/account-details?parent_id=${mspA.id}&format=csv&bom=true&sort=-quota_used_pct`);
    assert.equal(csv.status, 200, csv.text);
    // raw bytes: a text decoder would swallow the BOM
    const raw = Buffer.from(await (await s.stack.fetch(`/api/v1/reports/account-details?parent_id=${mspA.id}&format=csv&bom=true&sort=-quota_used_pct`, { headers: { authorization: `Bearer ${adminATok}` } })).arrayBuffer());
    assert.deepEqual([...raw.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the UTF-8 BOM for Excel');
    const text = raw.subarray(3).toString('utf8');
    const lines = text.split('\r\n');
    assert.equal(lines[0], ACCOUNT_COLUMNS.join(','));
    assert.ok(lines[1].startsWith(`顧客会社A,active,150000000000,200000000000,7000000000,,75.00,`), lines[1]);
    assert.ok(text.includes('"Acme, ""East""",active,0,,0,,,'), text);
    // the tenants list's usage columns come from the published view
    const ten = await adminA('GET', `/api/v1/tenants?parent_id=${mspA.id}&q=${encodeURIComponent('顧客')}`);
    assert.equal(ten.status, 200, ten.text);
    assert.equal(ten.json.items[0].cloud_usage_bytes, 150 * GB);
    assert.equal(ten.json.items[0].datastore_usage_bytes, 7 * GB);
    assert.equal(ten.json.items[0].sources_total, 3);
    // "how close is each customer": the customer list sorted by quota_used_pct, page by page
    const seen = [];
    let cursor = null;
    do {
      const page = await adminA('GET', `/api/v1/tenants?parent_id=${mspA.id}&sort=-quota_used_pct&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200, page.text);
      seen.push(...page.json.items.map((x) => x.id));
      cursor = page.json.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [a1.id, a2.id]);
    assertProblem(await adminA('GET', `/api/v1/tenants?parent_id=${mspA.id}&sort=-quota_used_pct&cursor=${Buffer.from(JSON.stringify(['-quota_used_pct', '1; DROP', a1.id, mspA.id])).toString('base64url')}`), 400, 'invalid_cursor');
  });

  test('crossing a threshold upward alerts once: audit, outbox, mail in Japanese; again after falling below', async () => {
    const alerts = () => sql(s.stack, `SELECT count(*) FROM quotas.audit_events WHERE action = 'quota.threshold_crossed' AND tenant_id = :'p1'`, [a1.id]);
    await waitFor(async () => (await alerts()) === '1', { what: 'the 75 % alert' });
    assert.equal(await sql(s.stack, `SELECT count(*) FROM quotas.outbox WHERE type = 'quota.threshold_crossed' AND aggregate_id = :'p1'`, [a1.id]), '1');
    await waitFor(() => readMails(s.stack).some((m) => m.headers.to?.includes(jaAdmin.username) && m.headers.subject.includes('クォータ警告')), { what: 'the alert mail' });
    const mail = readMails(s.stack).find((m) => m.headers.subject.includes('クォータ警告'));
    assert.ok(mail.text.includes('顧客会社A'));
    assert.ok(mail.text.includes('150.00 GB'));
    assert.ok(mail.headers.subject.startsWith('Acme Backup'), mail.headers.subject);
    assert.match(mail.headers.from, /Acme Alerts/);
    assert.match(mail.headers['reply-to'] || '', /support@acme\.example/);
    // still above 75 %: no repeat
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(a1.id, 101 * GB, 'vm-1', 'cloud_storage', at())])).status, 200);
    // below, then above again: a second alert
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(a1.id, 10 * GB, 'vm-1', 'cloud_storage', at())])).status, 200);
    await waitFor(async () => (await sql(s.stack, `SELECT alert_level FROM quotas.quotas WHERE tenant_id = :'p1' AND resource = 'cloud_storage'`, [a1.id])) === '0', { what: 'the re-arm' });
    assert.equal(await alerts(), '1');
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(a1.id, 140 * GB, 'vm-1', 'cloud_storage', at())])).status, 200);
    await waitFor(async () => (await alerts()) === '2', { what: 'the second alert (190 GB: 90 %)' });
    const q = await adminA('GET', `/api/v1/tenants/${a1.id}/quotas`);
    assert.equal(q.json.items.find((x) => x.resource === 'cloud_storage').alert_level_pct, 90);
  });

  test('a hard quota refuses growth (that tenant only), never shrinking; replays count once', async () => {
    const put = await adminA('PUT', `/api/v1/tenants/${a2.id}/quotas/cloud_storage`, { limit_bytes: 10 * GB, enforcement: 'hard' });
    assert.equal(put.status, 200, put.text);
    const key = `samples-${Date.now()}`;
    const first = [sample(a2.id, 8 * GB, 'srv', 'cloud_storage', at())];
    const ok = await writer('POST', '/api/v1/usage/samples', first, { 'idempotency-key': key });
    assert.equal(ok.status, 200, ok.text);
    const again = await writer('POST', '/api/v1/usage/samples', first, { 'idempotency-key': key });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, ok.json);
    assertProblem(await writer('POST', '/api/v1/usage/samples', [sample(a2.id, 9 * GB, 'srv', 'cloud_storage', at())], { 'idempotency-key': key }), 422, 'idempotency_key_reused');
    const over = await writer('POST', '/api/v1/usage/samples', [sample(b1.id, 1 * GB, 'x', 'cloud_storage', at()), sample(a2.id, 11 * GB, 'srv', 'cloud_storage', at())]);
    assertProblem(over, 409, 'quota_exceeded');
    assert.deepEqual(over.json.errors.map((e) => e.field), ['[1].used_bytes']);
    // nothing of the refused batch was stored (not even B1's sample); B1 alone goes through
    assert.equal(await sql(s.stack, `SELECT count(*) FROM usage.samples WHERE tenant_id = :'p1'`, [b1.id]), '0');
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(b1.id, 1 * GB, 'x', 'cloud_storage', at())])).status, 200);
    // a restore shrinks or keeps usage: accepted even over a lowered limit
    assert.equal((await adminA('PUT', `/api/v1/tenants/${a2.id}/quotas/cloud_storage`, { limit_bytes: 1 * GB, enforcement: 'hard' })).status, 200);
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(a2.id, 5 * GB, 'srv', 'cloud_storage', at())])).status, 200);
    assert.equal(await sql(s.stack, `SELECT used_bytes FROM usage.tenant_usage WHERE tenant_id = :'p1' AND resource = 'cloud_storage'`, [a2.id]), String(5 * GB));
  });

  test('job events count once by job_id; jobs, sources, protection, transfer and stored-data reports', async () => {
    const now = Date.now();
    const events = [
      { tenant_id: a1.id, source_id: 'pc-1', source_type: 'agent', job_id: 'job-1', status: 'completed', started_at: iso(now - 7200e3), finished_at: iso(now - 3600e3), bytes_transferred: 1234 },
      { tenant_id: a1.id, source_id: 'vm-7', source_type: 'agentless', job_id: 'job-2', status: 'failed', finished_at: iso(now - 600e3), bytes_transferred: 10 },
      { tenant_id: a1.id, source_id: '\\\\nas\\share', source_type: 'unc', job_id: 'job-3', status: 'canceled', finished_at: iso(now - 60e3), bytes_transferred: 0 },
    ];
    const r = await writer('POST', '/api/v1/usage/job-events', events);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.new_jobs, 3);
    const again = await writer('POST', '/api/v1/usage/job-events', events);
    assert.equal(again.json.new_jobs, 0);
    const jobs = await adminA('GET', `/api/v1/reports/jobs-24h?parent_id=${mspA.id}`);
    assert.equal(jobs.status, 200, jobs.text);
    const j = jobs.json.items.find((x) => x.tenant_id === a1.id);
    assert.deepEqual([j.completed, j.warning, j.failed, j.not_run, j.canceled, j.total], [1, 0, 1, 0, 1, 3]);
    const src = (await adminA('GET', `/api/v1/reports/sources?parent_id=${mspA.id}`)).json.items.find((x) => x.tenant_id === a1.id);
    assert.deepEqual([src.agent, src.agentless, src.unc], [1, 1, 1]);
    const prot = (await adminA('GET', `/api/v1/reports/protection?parent_id=${mspA.id}`)).json.items.find((x) => x.tenant_id === a1.id);
    assert.deepEqual([prot.protected, prot.failed, prot.canceled], [1, 1, 1]);
    assert.equal(prot.no_policy, 3); // vm-1, vm-2 and nas sent usage but never ran a job
    const tr = (await adminA('GET', `/api/v1/reports/data-transfer?parent_id=${mspA.id}`)).json.items.find((x) => x.tenant_id === a1.id);
    assert.equal(tr.bytes_transferred_30d, 1244);
    const st = await adminA('GET', `/api/v1/reports/stored-data?parent_id=${mspA.id}&sort=-total_bytes&format=csv`);
    assert.equal(st.status, 200, st.text);
    assert.match(st.text.split('\r\n')[0], /^tenant_id,name,cloud_usage_bytes,datastore_usage_bytes,total_bytes,cloud_peak_30d_bytes$/);
    const stored = (await adminA('GET', `/api/v1/reports/stored-data?parent_id=${mspA.id}`)).json.items.find((x) => x.tenant_id === a1.id);
    assert.equal(stored.cloud_usage_bytes, 190 * GB); // vm-1 140 GB + vm-2 50 GB
    assert.equal(stored.cloud_peak_30d_bytes, 190 * GB);
    assert.equal(stored.total_bytes, 197 * GB);
    const acc = (await adminA('GET', `/api/v1/reports/account-details?parent_id=${mspA.id}`)).json.items.find((x) => x.name === '顧客会社A');
    assert.deepEqual([acc.agent_sources, acc.agentless_sources, acc.unc_sources], [1, 1, 1]);
  });

  test('a closed month: the billing CSV matches docs/billing.md by hand, the same bytes on every fetch', async () => {
    // the month before last has ended more than the 2-day settle delay ago
    const d = new Date();
    const first = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 2, 1));
    const period = first.toISOString().slice(0, 7);
    const day = (n, h = 12) => iso(Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), n, h));
    const plan = await adminA('PUT', `/api/v1/tenants/${mspA.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD', tax_rate_pct: '10', discount_pct: '5' });
    assert.equal(plan.status, 200, plan.text);
    const inherited = await adminA('GET', `/api/v1/tenants/${a2.id}/billing-plan`);
    assert.equal(inherited.status, 200, inherited.text);
    assert.equal(inherited.json.inherited_from, mspA.id);
    assert.equal(inherited.json.measure, 'peak');
    // A2: 40 GB, then a peak of 100.1 GB on the 15th, then 1 byte
    const r = await writer('POST', '/api/v1/usage/samples', [
      sample(a2.id, 40 * GB, 'srv', 'datastore', day(2)), sample(a2.id, 100.1 * GB, 'srv', 'datastore', day(15)), sample(a2.id, 1, 'srv', 'datastore', day(16)),
    ]);
    assert.equal(r.status, 200, r.text);
    const url = `/api/v1/billing/export?period=${period}&parent_id=${mspA.id}&format=csv`;
    const one = await adminA('GET', url);
    assert.equal(one.status, 200, one.text);
    const line = one.text.split('\r\n').find((l) => l.includes(a2.id) && l.includes(',datastore,'));
    // units = ceil(100.1, 3) = 100.100; 100.100 x 0.05 = 5.005 -> 5.01; discount 5 % = 0.2505 -> 0.25;
    // tax 10 % of 4.76 = 0.476 -> 0.48; total 5.24 (docs/billing.md, the worked example)
    assert.equal(line, `${period},${a2.id},"Acme, ""East""",datastore,100.100,GB,0.05,5.01,USD,peak,100100000000,${new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate()},5,0.25,10,0.48,5.24,1,false`);
    // late samples, a new price and a rename change nothing in a frozen period
    assert.equal((await writer('POST', '/api/v1/usage/samples', [sample(a2.id, 900 * GB, 'late', 'datastore', day(20))])).status, 200);
    assert.equal((await adminA('PUT', `/api/v1/tenants/${mspA.id}/billing-plan`, { unit: 'TB', period: 'month', price_per_unit: '9', currency: 'EUR' })).status, 200);
    const two = await adminA('GET', url);
    assert.equal(two.text, one.text);
    // the open month is provisional
    const open = await adminA('GET', `/api/v1/billing/export?period=${d.toISOString().slice(0, 7)}&parent_id=${mspA.id}&format=json`);
    assert.equal(open.status, 200, open.text);
    assert.equal(open.json.provisional, true);
    assert.ok(open.json.items.every((x) => x.provisional === true && x.currency === 'EUR'));
  });

  test('bad input: every item checked, the whole batch refused, naming the item', async () => {
    const bad = async (items, field, code, status = 400) => {
      const r = await writer('POST', '/api/v1/usage/samples', items);
      assertProblem(r, status, code);
      if (field) assert.ok(r.json.errors.some((e) => e.field === field), `${field} in ${r.text}`);
      return r;
    };
    const good = sample(a1.id, 1);
    await bad([good, { ...good, used_bytes: -1 }], '[1].used_bytes', 'validation_failed');
    await bad([{ ...good, used_bytes: 2 ** 62 }], '[0].used_bytes', 'validation_failed');
    await bad([{ ...good, used_bytes: 1.5 }], '[0].used_bytes', 'validation_failed');
    await bad([{ ...good, used_bytes: '1' }], '[0].used_bytes', 'validation_failed');
    await bad([{ ...good, resource: 'tape' }], '[0].resource', 'validation_failed');
    await bad([good, { ...good, tenant_id: '01900000-0000-7000-8000-00000000dead' }], '[1].tenant_id', 'validation_failed');
    await bad([{ ...good, tenant_id: "x' OR 1=1 --" }], '[0].tenant_id', 'validation_failed');
    await bad([{ ...good, at: iso(Date.now() + 86400e3) }], '[0].at', 'validation_failed');
    await bad([{ ...good, at: '2026-13-01T00:00:00Z' }], '[0].at', 'validation_failed');
    await bad([{ ...good, extra: 1 }], null, 'unknown_field');
    await bad([], null, 'validation_failed');
    await bad({ tenant_id: a1.id }, null, 'validation_failed');
    await bad(Array.from({ length: 10001 }, () => good), null, 'payload_too_large', 413);
    // over 8 MiB: the gateway answers from Content-Length and may close before reading the
    // rest, so the body goes over a plain socket that ignores the reset of an unread body
    const huge = await rawPost(s.stack, '/api/v1/usage/samples', writerTok, JSON.stringify([{ ...good, source_id: 'x'.repeat(8 * 1024 * 1024) }]));
    assert.equal(huge.status, 413, huge.text);
    assert.equal(JSON.parse(huge.text).code, 'payload_too_large');
    assertProblem(await writer('POST', '/api/v1/usage/samples', '[{"tenant_id":'), 400, 'malformed_json');
    const badUtf8 = await s.stack.request('/api/v1/usage/samples', { method: 'POST', auth: writerTok, headers: { 'content-type': 'application/json' }, body: Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x5d]) });
    assertProblem(badUtf8, 400, 'invalid_utf8');
    // a foreign tenant: MSP A's writer may not post for MSP B's customer
    const f = await writerA('POST', '/api/v1/usage/samples', [sample(a1.id, 1), sample(b1.id, 1)]);
    assertProblem(f, 400, 'validation_failed');
    assert.deepEqual(f.json.errors.map((e) => e.field), ['[1].tenant_id']);
    // a client without usage:write anywhere (people are refused too: tests/integration/usage.c)
    assertProblem(await adminA('POST', '/api/v1/usage/samples', [good]), 403, 'forbidden');
    // job events
    const job = { tenant_id: a1.id, source_id: 's', source_type: 'agent', job_id: 'j', status: 'completed', finished_at: iso(Date.now()), bytes_transferred: 1 };
    assertProblem(await writer('POST', '/api/v1/usage/job-events', [{ ...job, status: 'exploded' }]), 400, 'validation_failed');
    assertProblem(await writer('POST', '/api/v1/usage/job-events', [job, job]), 400, 'validation_failed');
    assertProblem(await writer('POST', '/api/v1/usage/job-events', [{ ...job, started_at: iso(Date.now() + 3600e3 * 2) }]), 400, 'validation_failed');
    // billing plans and exports
    const plan = { unit: 'GB', period: 'month', price_per_unit: '0.05', currency: 'USD' };
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, currency: 'XYZ' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, currency: 'usd' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, price_per_unit: '0.1234567' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, price_per_unit: 0.05 }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, price_per_unit: '-1' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, unit: 'PB' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, tax_rate_pct: '101' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { ...plan, colour: 'red' }), 400, 'unknown_field');
    assertProblem(await adminA('GET', `/api/v1/billing/export?period=2999-01`), 400, 'invalid_parameter');
    assertProblem(await adminA('GET', `/api/v1/billing/export?period=2026-13`), 400, 'invalid_parameter');
    assertProblem(await adminA('GET', `/api/v1/billing/export?period=2026-10&format=xml`), 400, 'invalid_parameter');
    assertProblem(await adminA('GET', `/api/v1/billing/export`), 400, 'invalid_parameter');
    // quotas
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/tape`, { limit_bytes: 1 }), 404, 'not_found');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: -5 }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 5, enforcement: 'maybe' }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 5, alert_thresholds_pct: ['x'] }), 400, 'validation_failed');
    assertProblem(await adminA('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 5, grace_period_hours: 3 }), 400, 'validation_failed');
    // reports
    assertProblem(await adminA('GET', `/api/v1/reports/account-details?sort=password`), 400, 'invalid_parameter');
    assertProblem(await adminA('GET', `/api/v1/reports/account-details?bogus=1`), 400, 'invalid_parameter');
    const meta = await adminA('GET', `/api/v1/reports/account-details?parent_id=${mspA.id}&q=${encodeURIComponent("'; DROP TABLE usage.samples; --")}`);
    assert.equal(meta.status, 200, meta.text);
    assert.equal(meta.json.total, 0);
  });

  test('isolation: a customer of one MSP never sees another MSP\'s usage, reports, quotas or billing', async () => {
    for (const path of [
      `/api/v1/reports/account-details?parent_id=${mspA.id}`,
      `/api/v1/reports/jobs-24h?parent_id=${a1.id}`,
      `/api/v1/reports/stored-data?parent_id=${a1.id}&format=csv`,
      `/api/v1/billing/export?period=2026-10&parent_id=${mspA.id}`,
      `/api/v1/tenants/${a1.id}/quotas`,
      `/api/v1/tenants/${a1.id}/billing-plan`,
    ])
      assertProblem(await adminB('GET', path), 404, 'not_found');
    assertProblem(await adminB('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 1 }), 404, 'not_found');
    assertProblem(await adminB('PUT', `/api/v1/tenants/${a1.id}/billing-plan`, { unit: 'GB', period: 'month', price_per_unit: '1', currency: 'USD' }), 404, 'not_found');
    const own = await adminB('GET', '/api/v1/reports/account-details');
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(own.json.items.map((x) => x.name), ['Beta One']);
    const bill = await adminB('GET', '/api/v1/billing/export?period=2026-10&format=csv');
    assert.equal(bill.status, 200, bill.text);
    assert.ok(!bill.text.includes(a1.id) && !bill.text.includes('顧客会社A'));
    // a customer's own admin sees its own account only, and cannot change its quota
    const custAdmin = jsonApi(s.stack, (await apiClient(s.stack, 'usage-tenant-admin', 'tenant_admin', a1.id)).accessToken);
    const mine = await custAdmin('GET', '/api/v1/reports/account-details');
    assert.deepEqual(mine.json.items.map((x) => x.name), ['顧客会社A']);
    assertProblem(await custAdmin('GET', `/api/v1/reports/account-details?parent_id=${a2.id}`), 404, 'not_found');
    assertProblem(await custAdmin('PUT', `/api/v1/tenants/${a1.id}/quotas/cloud_storage`, { limit_bytes: 1 }), 403, 'forbidden');
  });
});
