// The README's first command, as a newcomer runs it: deploy/local/up in the foreground
// prints the ready banner with the platform super-admin, serves the API through the
// gateway, restarts a service that dies, and stops everything (PostgreSQL included) on
// SIGTERM with exit status 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN_DIR, SOURCE_DIR, SERVICES, freePortBase, waitFor } from './lib/stack.mjs';

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('deploy/local/up runs, supervises and stops the whole stack', { timeout: 180000 }, async () => {
  const base = await freePortBase(9);
  const data = mkdtempSync(join(tmpdir(), 'console-up-'));
  const secret = randomBytes(32).toString('hex');
  const url = `http://127.0.0.1:${base}`;
  const up = spawn('bash', [join(SOURCE_DIR, 'deploy/local/up'), '--no-build'], {
    cwd: tmpdir(), // up must work from any directory
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CONSOLE_DATA_DIR: data,
      CONSOLE_HTTP_PORT: String(base),
      CONSOLE_BIN_DIR: BIN_DIR,
      CONSOLE_BOOTSTRAP_CLIENT_ID: 'up-test',
      CONSOLE_BOOTSTRAP_CLIENT_SECRET: secret,
      CONSOLE_ACCESS_LOG: 'off',
      ASAN_OPTIONS: 'detect_leaks=0',
    },
  });
  let out = '';
  up.stdout.on('data', (d) => (out += d));
  up.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => up.on('exit', (code, signal) => resolve({ code, signal })));
  let passed = false;
  try {
    await waitFor(() => out.includes('console is ready'), { timeout: 120000, what: `the ready banner:\n${out}` });
    assert.match(out, /platform super-admin: admin@localhost/);
    assert.match(out, new RegExp(`activation link: +${url}/activate\\?token=[A-Za-z0-9_-]{40,}`));
    assert.match(out, /bootstrap API client: up-test/);

    const ready = await (await fetch(`${url}/readyz`)).json();
    assert.deepEqual(Object.keys(ready.services).sort(), [...SERVICES].sort());
    const tok = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`up-test:${secret}`).toString('base64'),
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(tok.status, 200);
    const { access_token } = await tok.json();
    const me = await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).client_id, 'up-test');

    // a crashed service comes back
    const pidFile = join(data, 'run', 'tenants.pid');
    const first = Number(readFileSync(pidFile, 'utf8'));
    process.kill(first, 'SIGKILL');
    await waitFor(() => /tenants exited with status \d+; restarting/.test(out), { timeout: 10000, what: 'the restart notice' });
    await waitFor(
      async () => {
        const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
        if (!pid || pid === first) return false;
        return (await fetch(`${url}/readyz`)).status === 200;
      },
      { timeout: 20000, what: 'tenants restarted and ready' },
    );

    // SIGTERM stops everything, PostgreSQL too, and exits 0
    const pids = SERVICES.concat('gateway').map((s) => Number(readFileSync(join(data, 'run', `${s}.pid`), 'utf8')));
    up.kill('SIGTERM');
    const { code } = await Promise.race([
      exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`up did not stop:\n${out}`)), 30000)),
    ]);
    assert.equal(code, 0, out);
    for (const pid of pids) assert.ok(!alive(pid), `process ${pid} still running`);
    assert.ok(!existsSync(join(data, 'pg', 'data', 'postmaster.pid')), 'PostgreSQL still running');
    passed = true;
  } finally {
    if (up.exitCode === null) {
      try {
        process.kill(-up.pid, 'SIGKILL');
      } catch {}
      spawn(join(SOURCE_DIR, 'deploy/local/pg'), ['stop', join(data, 'pg')], { stdio: 'ignore' });
    }
    if (passed) rmSync(data, { recursive: true, force: true });
    else console.log(`up test failed; data and logs kept in ${data}\n${out.slice(-4000)}`);
  }
});
