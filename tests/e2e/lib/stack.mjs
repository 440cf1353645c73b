// The real stack for an end-to-end test file: a private PostgreSQL (deploy/local/pg) in a
// temporary data directory, `consolectl bootstrap` with a random API client, the eight
// services and the gateway from CONSOLE_BIN_DIR on free loopback ports.
//
//   import { useStack } from './lib/stack.mjs';
//   const s = useStack();                 // before/after hooks of node:test
//   test('…', async () => { const r = await s.stack.request('/api/v1/me', { auth: true }); });
//
// or `const stack = await startStack({ env })` and `await stack.stop()` by hand.
//
// Logs: <dataDir>/logs/<service>.log (stdout and stderr). The data directory is removed
// when every test passed, and kept (its path printed) when one failed.
//
// Servers run with ASAN_OPTIONS=detect_leaks=0: long-running servers end with h2o
// contexts that cannot be disposed (see services/gateway/main.c), which LeakSanitizer
// would report at exit; every other sanitizer check stays on, and a server that exits
// other than cleanly on SIGTERM (a sanitizer report, a crash) fails the test file.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, afterEach } from 'node:test';

export const SERVICES = ['identity', 'tenants', 'users', 'roles', 'quotas', 'usage', 'branding', 'licensing'];
const here = dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.CONSOLE_SOURCE_DIR || resolve(here, '../../..');
export const BIN_DIR = process.env.CONSOLE_BIN_DIR || join(SOURCE_DIR, 'build/bin');
const PG = join(SOURCE_DIR, 'deploy/local/pg');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value; throws with the last value/error at the deadline. */
export async function waitFor(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

function run(cmd, args, env, timeout = 120000) {
  return new Promise((resolveRun, reject) => {
    execFile(cmd, args, { env, timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(err);
      } else resolveRun({ stdout, stderr });
    });
  });
}

function portFree(port) {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/**
 * A random base whose nine ports (base..base+8) are all free, below the kernel's ephemeral
 * range (net.ipv4.ip_local_port_range, 32768 and up by default): a port chosen inside it
 * can be taken, between this check and the service's bind, by any outgoing connection or
 * port-0 listener of the test (a stack failed to start with EADDRINUSE that way).
 */
export async function freePortBase(count = 9) {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    /* not Linux: the default */
  }
  const top = Math.max(12000, Math.min(low, 32768));
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = randomInt(10000, top - count);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

function asanOptions() {
  const kept = (process.env.ASAN_OPTIONS || '').split(':').filter((o) => o && !o.startsWith('detect_leaks='));
  return [...kept, 'detect_leaks=0'].join(':');
}

const live = new Set(); // every stack of this process, for the exit handler

function emergencyCleanup() {
  for (const s of live) s.killAllSync();
}
process.once('exit', emergencyCleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    emergencyCleanup();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  });
}

class Stack {
  constructor(opts) {
    this.opts = opts;
    this.procs = new Map(); // name -> {child, exited: Promise, expected: bool, result}
    this.failed = false;
    this.problems = []; // unexpected exits
    this.cachedToken = null;
  }

  async start() {
    this.dataDir = mkdtempSync(join(tmpdir(), 'console-e2e-'));
    this.logDir = join(this.dataDir, 'logs');
    mkdirSync(this.logDir);
    this.pgDir = join(this.dataDir, 'pg');
    this.base = await freePortBase();
    this.url = `http://127.0.0.1:${this.base}`;
    this.ports = { gateway: this.base };
    SERVICES.forEach((s, i) => (this.ports[s] = this.base + 1 + i));
    this.clientId = `e2e-${randomBytes(6).toString('hex')}`;
    this.clientSecret = randomBytes(30).toString('base64url');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('CONSOLE_') || k === 'DATABASE_URL') delete env[k];
    this.env = {
      ...env,
      CONSOLE_DATA_DIR: this.dataDir,
      CONSOLE_HTTP_PORT: String(this.base),
      CONSOLE_SERVICE_PORT_BASE: String(this.base),
      CONSOLE_BOOTSTRAP_CLIENT_ID: this.clientId,
      CONSOLE_BOOTSTRAP_CLIENT_SECRET: this.clientSecret,
      CONSOLE_ACCESS_LOG: process.env.E2E_ACCESS_LOG ? 'on' : 'off',
      ...(this.opts.env || {}),
    };
    live.add(this);
    await this.pg('start');
    this.bootstrapOutput = (await this.consolectl('bootstrap')).stdout;
    for (const s of SERVICES) this.spawn(s);
    this.spawn('gateway');
    await this.waitReady(60000);
    return this;
  }

  /** deploy/local/pg start|stop on this stack's cluster. */
  async pg(cmd) {
    return run(PG, [cmd, this.pgDir], this.env);
  }

  /** Runs consolectl with the stack's environment; resolves {stdout, stderr}. */
  async consolectl(...args) {
    return run(join(BIN_DIR, 'consolectl'), args, this.env);
  }

  spawn(name, extraEnv = {}) {
    const bin = join(BIN_DIR, name === 'gateway' ? 'console-gateway' : `console-${name}`);
    const logPath = join(this.logDir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    writeSync(fd, `---- ${new Date().toISOString()} start ${name}\n`);
    const env = { ...this.env, ...extraEnv, ASAN_OPTIONS: asanOptions() };
    const child = spawn(bin, [], { env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const p = { child, expected: false, result: null };
    p.exited = new Promise((res) => {
      child.once('exit', (code, signal) => {
        p.result = { code, signal };
        if (!p.expected) this.problems.push(`${name} exited unexpectedly (code ${code}, signal ${signal})`);
        res(p.result);
      });
    });
    this.procs.set(name, p);
    return p;
  }

  logs(name) {
    const path = join(this.logDir, `${name}.log`);
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** SIGTERM, up to 15 s, then SIGKILL. Fails (records a problem) unless it exits 0. */
  async terminate(name, { timeout = 15000 } = {}) {
    const p = this.procs.get(name);
    if (!p) return null;
    this.procs.delete(name);
    p.expected = true;
    if (p.result) return p.result;
    p.child.kill('SIGTERM');
    const t = setTimeout(() => {
      this.backtrace(name, p.child.pid);
      p.child.kill('SIGKILL');
    }, timeout);
    const r = await p.exited;
    clearTimeout(t);
    if (r.code !== 0)
      this.problems.push(`${name} did not stop cleanly on SIGTERM (code ${r.code}, signal ${r.signal})`);
    return r;
  }

  /** Appends every thread's backtrace (gdb, when installed) to the log: why it hangs. */
  backtrace(name, pid) {
    try {
      const out = execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply all bt'], {
        timeout: 30000,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const fd = openSync(join(this.logDir, `${name}.log`), 'a');
      writeSync(fd, `---- ${name} did not stop within the timeout; threads:\n${out}\n`);
      closeSync(fd);
    } catch {
      /* no gdb, or it failed: the log shows the missing "stopped" line anyway */
    }
  }

  /** SIGKILL (a crash, as far as the rest of the stack can tell). */
  async kill(name) {
    const p = this.procs.get(name);
    if (!p) return null;
    this.procs.delete(name);
    p.expected = true;
    p.child.kill('SIGKILL');
    return p.exited;
  }

  /** Stops (if running) and starts a process again, then waits until it answers /readyz. */
  async restart(name, { env = {}, timeout = 30000 } = {}) {
    await this.terminate(name);
    this.spawn(name, env);
    if (name === 'gateway') await this.waitReady(timeout);
    else
      await waitFor(async () => (await this.fetch(`http://127.0.0.1:${this.ports[name]}/readyz`, { timeoutMs: 2000 })).status === 200, {
        timeout,
        what: `${name} /readyz`,
      });
  }

  async waitReady(timeout = 60000) {
    const deadline = Date.now() + timeout;
    let last = 'no answer';
    for (;;) {
      for (const [name, p] of this.procs)
        if (p.result) throw new Error(`${name} exited during start-up (${JSON.stringify(p.result)}):\n${this.tail(name)}`);
      try {
        const r = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(3000) });
        last = `${r.status} ${await r.text()}`;
        if (r.status === 200) return;
      } catch (e) {
        last = e.message;
      }
      if (Date.now() > deadline) throw new Error(`gateway not ready after ${timeout} ms: ${last}`);
      await sleep(200);
    }
  }

  tail(name, lines = 30) {
    return this.logs(name).split('\n').slice(-lines).join('\n');
  }

  /** fetch() against the gateway (path) or an absolute URL, with a 10 s timeout. */
  async fetch(path, init = {}) {
    const url = /^https?:/.test(path) ? path : this.url + path;
    const { timeoutMs = 10000, ...rest } = init;
    try {
      return await fetch(url, { signal: AbortSignal.timeout(timeoutMs), ...rest });
    } catch (e) {
      const cause = e.cause ? ` (${e.cause.code || e.cause.message})` : '';
      throw new Error(`${rest.method || 'GET'} ${url}: ${e.name}: ${e.message}${cause}`);
    }
  }

  /** {status, headers, text, json, ms}; auth: true adds the cached bearer token, a string uses it. */
  async request(path, { auth, headers = {}, ...init } = {}) {
    const h = { ...headers };
    if (auth) h.authorization = `Bearer ${auth === true ? await this.token() : auth}`;
    const t0 = Date.now();
    const r = await this.fetch(path, { ...init, headers: h });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, headers: r.headers, text, json, ms: Date.now() - t0 };
  }

  /** A client-credentials access token of the bootstrap client (cached until near expiry). */
  async token() {
    if (this.cachedToken && this.cachedToken.until > Date.now()) return this.cachedToken.value;
    const r = await this.request('/oauth2/token', {
      method: 'POST',
      headers: {
        authorization: 'Basic ' + Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64'),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    if (r.status !== 200) throw new Error(`token request failed: ${r.status} ${r.text}`);
    this.cachedToken = { value: r.json.access_token, until: Date.now() + (r.json.expires_in - 30) * 1000 };
    return this.cachedToken.value;
  }

  /** Stops everything; keeps the data directory when a test failed (or keep: true). */
  async stop({ keep } = {}) {
    if (!live.has(this)) return;
    await this.terminate('gateway');
    await Promise.all(SERVICES.map((s) => this.terminate(s)));
    try {
      await this.pg('stop');
    } catch (e) {
      this.problems.push(`pg stop failed: ${e.message}`);
    }
    live.delete(this);
    const failed = keep || this.failed || this.problems.length > 0 || Boolean(process.exitCode);
    if (failed || process.env.E2E_KEEP) {
      console.log(`# e2e: stack data and logs kept in ${this.dataDir}`);
    } else {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
    if (this.problems.length) {
      const names = new Set(this.problems.map((p) => p.split(' ')[0]));
      const tails = [...names].filter((n) => n === 'gateway' || SERVICES.includes(n)).map((n) => `--- ${n}.log\n${this.tail(n)}`);
      throw new Error(`stack problems:\n${this.problems.join('\n')}\n${tails.join('\n')}`);
    }
  }

  /** Synchronous last resort (process exit): kill everything, stop PostgreSQL, keep the dir. */
  killAllSync() {
    for (const p of this.procs.values()) if (!p.result) p.child.kill('SIGKILL');
    try {
      execFileSync(PG, ['stop', this.pgDir], { env: this.env, stdio: 'ignore', timeout: 30000 });
    } catch {
      /* nothing more to do */
    }
    if (this.dataDir) console.error(`# e2e: stack data and logs kept in ${this.dataDir}`);
    live.delete(this);
  }
}

export async function startStack(opts = {}) {
  const s = new Stack(opts);
  try {
    return await s.start();
  } catch (e) {
    s.failed = true;
    await s.stop().catch(() => {});
    throw e;
  }
}

/**
 * Registers node:test hooks: the stack starts before the file's tests, a failing test
 * marks it (so its data directory is kept), and it stops after them. Use handle.stack.
 */
export function useStack(opts = {}) {
  const handle = { stack: null };
  before(async () => {
    handle.stack = await startStack(opts);
  }, { timeout: 120000 });
  afterEach((t) => {
    if (!t.passed && handle.stack) handle.stack.failed = true;
  });
  after(async () => {
    if (handle.stack) await handle.stack.stop();
  }, { timeout: 60000 });
  return handle;
}
