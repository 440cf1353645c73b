// Licensing throughput through the real gateway (prints figures; no pass/fail):
// online activations into one large order (each takes the order's row lock, allocates
// from Default with the CHECK, signs an Ed25519 license and writes the registration
// link; the mail is written after the commit) and check-ins (secret check, state,
// a freshly signed license), with C concurrent clients for D seconds.
//
//   CONSOLE_BIN_DIR=build-bench/bin node tests/bench/licensing/run.mjs
//   BENCH_DURATION=5 BENCH_CONNECTIONS=16 (defaults)
//
// The client is Node's fetch on the same machine: the figures are end-to-end requests
// per second of this setup, not the service's ceiling.
import { randomUUID } from 'node:crypto';
import { startStack } from '../../e2e/lib/stack.mjs';

const duration = Number(process.env.BENCH_DURATION || 5) * 1000;
const conns = Number(process.env.BENCH_CONNECTIONS || 16);
const stack = await startStack({ env: { CONSOLE_RATE_LIMIT_RPS: '0', CONSOLE_SMTP_URL: '' } });
const json = (method, path, body, headers = {}) =>
  stack.request(path, { method, headers: { 'content-type': 'application/json', ...headers }, body: body && JSON.stringify(body) });
const platformId = /platform tenant: (\S+)/.exec(stack.bootstrapOutput)[1];
const token = await stack.token();
const order = { order_id: `BENCH-${Date.now()}`, fulfillment_number: 'FN-BENCH', tenant_id: platformId,
  lines: [{ product: 'Arcserve UDP', edition: 'Advanced', quantity: 1000000, license_type: 'perpetual' }] };
let r = await json('POST', '/api/v1/licensing/orders', order, { authorization: `Bearer ${token}` });
if (r.status !== 201) throw new Error(r.text);
const fp = () => ({ bios_serial: randomUUID(), cpu_id: 'BFEBFBFF000906EA', machine_guid: randomUUID() });
const activation = (i) => ({ order_id: order.order_id, fulfillment_number: order.fulfillment_number,
  email: 'bench@example.com', computer_name: `BENCH-${i}`, fingerprint: fp() });

async function run(name, fn) {
  const lat = [];
  let n = 0, errors = 0;
  const end = Date.now() + duration;
  await Promise.all(Array.from({ length: conns }, async (_, c) => {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      const ok = await fn(c, n++);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (!ok) errors++;
    }
  }));
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))].toFixed(1);
  console.log(`| ${name} | ${(lat.length / (duration / 1000)).toFixed(0)} | ${q(0.5)} | ${q(0.99)} | ${errors} |`);
}

console.log(`licensing via gateway, ${conns} concurrent clients, ${duration / 1000} s each\n`);
console.log('| operation | req/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---|---|---|');
await run('online activation (one order, row lock)', async (c, i) => (await json('POST', '/api/v1/licensing/activations', activation(i))).status === 201);
const acts = [];
for (let i = 0; i < conns * 4; i++) acts.push((await json('POST', '/api/v1/licensing/activations', activation(`c${i}`))).json);
await run('check-in (fresh license)', async (c, i) => {
  const a = acts[i % acts.length];
  return (await json('POST', `/api/v1/licensing/activations/${a.id}/check-in`, undefined, { 'x-activation-secret': a.activation_secret })).status === 200;
});
await run('public key (JWKS)', async () => (await stack.request('/api/v1/licensing/public-key')).status === 200);
await stack.stop();
