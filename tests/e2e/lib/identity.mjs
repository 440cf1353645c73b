// Helpers for identity end-to-end tests: SQL on the stack's private PostgreSQL (staged
// users are inserted directly until the users service exists), TOTP codes (RFC 6238,
// computed here with node:crypto), the .eml files of the mail folder, and the
// authentication API's happy path.
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
export const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
export const decodeJwt = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString('utf8'));
export const FORM = 'application/x-www-form-urlencoded';
export const basic = (id, secret) =>
  'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

/** Runs SQL as the console role with the system scope (row-level security admits it). */
export function sql(stack, text, params = []) {
  const url = `postgresql:///console?host=${stack.pgDir}&port=5432&user=console`;
  const args = [url, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
  params.forEach((p, i) => args.push('-v', `p${i + 1}=${p}`));
  const script = `SELECT set_config('console.system', 'on', false) \\g /dev/null\n${text}\n`;
  return new Promise((resolve, reject) => {
    const child = execFile('psql', args, { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
    child.stdin.end(script);
  });
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32decode(s) {
  let bits = 0, acc = 0;
  const out = [];
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    acc = (acc << 5) | B32.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret for a time step. */
export function totpAt(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32decode(secret)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1e6).padStart(6, '0');
}
export const currentStep = () => Math.floor(Date.now() / 1000 / 30);

/**
 * A code the server will accept once: the step after the last one used, never older than
 * the current step (the server accepts ±1 step and each step once; the previous step
 * would be refused if the request reached the server after the next boundary, which a
 * loaded machine makes likely). Waits for the clock when the window is used up.
 */
export async function nextTotp(account) {
  for (;;) {
    const step = Math.max(currentStep(), (account.lastStep ?? -1) + 1);
    if (step <= currentStep() + 1) {
      account.lastStep = step;
      return totpAt(account.secret, step);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The .eml files of the mail folder (name order), each {name, headers, text, html}. */
export function readMails(stack) {
  const dir = join(stack.dataDir, 'mail');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith('.eml'))
    .sort()
    .map((name) => parseMail(name, readFileSync(join(dir, name), 'utf8')));
}

function decodeHeader(v) {
  return v.replace(/\?=\s+=\?/g, '?==?').replace(/=\?UTF-8\?B\?([^?]*)\?=/gi, (_, b) => Buffer.from(b, 'base64').toString('utf8')).replace(/\r?\n\s+/g, '');
}

export function parseMail(name, raw) {
  const [head] = raw.split(/\r\n\r\n/);
  const headers = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = decodeHeader(line.slice(i + 1).trim());
  }
  const parts = {};
  const boundary = /boundary="([^"]+)"/.exec(headers['content-type'] || '');
  const chunks = boundary ? raw.split(`--${boundary[1]}`).slice(1, -1) : [raw];
  for (const chunk of chunks) {
    const [ph, ...rest] = chunk.replace(/^\r\n/, '').split(/\r\n\r\n/);
    const type = /content-type:\s*([^;\r\n]+)/i.exec(ph)?.[1]?.trim() || 'text/plain';
    const body = rest.join('\r\n\r\n');
    parts[type] = /base64/i.test(ph) ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : body;
  }
  return { name, headers, text: parts['text/plain'], html: parts['text/html'] };
}

/** Inserts a staged user (in the platform tenant unless tenantId) and an activation link. */
export async function stageUser(stack, { username, language = 'en', first = 'Test', last = 'User', tenantId, expired = false } = {}) {
  const id = randomUUID();
  const token = randomBytes(32).toString('base64url');
  username = username || `user-${randomBytes(4).toString('hex')}@example.com`;
  const tenant = tenantId || (await sql(stack, "SELECT id FROM tenants.tenants WHERE kind = 'platform'"));
  await sql(
    stack,
    `INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email, first_name, last_name, language, created_by)
     SELECT :'p1', t.id, t.msp_id, :'p2', :'p3', :'p4', :'p5', :'p6', 'e2e' FROM tenants.tenants t WHERE t.id = :'p7';
     INSERT INTO identity.activation_tokens (token_hash, user_id, expires_at)
     VALUES (:'p8', :'p1', now() + CASE WHEN :'p9' = 'yes' THEN interval '-1 hour' ELSE interval '72 hours' END);`,
    [id, username, username.includes('@') ? username : `${username}@example.com`, first, last, language, tenant, sha256hex(token), expired ? 'yes' : 'no'],
  );
  return { id, username, token, language };
}

export async function postJson(stack, path, body, headers = {}) {
  return stack.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export const GOOD_PASSWORD = 'Violet-Harbor-42';

/**
 * Activation to the end: password, TOTP enrolment and activation. Returns the account
 * {id, username, password, secret, factorId, lastStep, sessionToken}.
 */
export async function activateWithTotp(stack, staged, password = GOOD_PASSWORD) {
  const a = await postJson(stack, '/api/v1/authn/activate', {
    activation_token: staged.token,
    password,
    recovery_question: 'First pet?',
    recovery_answer: 'A cat named Tama',
    security_image: 'owl',
  });
  if (a.status !== 200) throw new Error(`activate: ${a.status} ${a.text}`);
  const e = await postJson(stack, '/api/v1/authn/factors', { state_token: a.json.state_token, type: 'totp' });
  if (e.status !== 200) throw new Error(`enrol: ${e.status} ${e.text}`);
  const account = { ...staged, password, secret: e.json.secret, factorId: e.json.id, lastStep: -1 };
  const v = await postJson(stack, `/api/v1/authn/factors/${e.json.id}/activate`, {
    state_token: a.json.state_token,
    pass_code: await nextTotp(account),
  });
  if (v.status !== 200) throw new Error(`factor activate: ${v.status} ${v.text}`);
  account.sessionToken = v.json.session_token;
  return account;
}

/** Password + TOTP through the authentication API; returns a session token. */
export async function signIn(stack, account) {
  const r = await postJson(stack, '/api/v1/authn', { username: account.username, password: account.password });
  if (r.status !== 200 || r.json.status !== 'MFA_REQUIRED') throw new Error(`authn: ${r.status} ${r.text}`);
  const f = r.json.factors.find((x) => x.type === 'totp');
  const v = await postJson(stack, `/api/v1/authn/factors/${f.id}/verify`, {
    state_token: r.json.state_token,
    pass_code: await nextTotp(account),
  });
  if (v.status !== 200) throw new Error(`verify: ${v.status} ${v.text}`);
  return v.json.session_token;
}

/** A PKCE pair (S256). */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** Registers a confidential client for the code flow (no admin API for that yet). */
export async function registerClient(stack, { clientId, secret, redirectUris, postLogoutUris = [] }) {
  const arr = (xs) => `{${xs.map((x) => `"${x}"`).join(',')}}`;
  await sql(
    stack,
    `INSERT INTO identity.clients (id, client_id, name, kind, secret_hash, scopes, grant_types, redirect_uris, post_logout_redirect_uris, created_by)
     VALUES (:'p1', :'p2', 'e2e relying party', 'confidential', :'p3', '{openid,profile,email,offline_access}',
             '{authorization_code,refresh_token}', :'p4', :'p5', 'e2e')`,
    [randomUUID(), clientId, sha256hex(secret), arr(redirectUris), arr(postLogoutUris)],
  );
}

/**
 * A signed-in user's access token for console-web: password + TOTP, the session token
 * through /oauth2/authorize with PKCE, and the code at /oauth2/token.
 */
export async function userAccessToken(stack, account) {
  return (await userTokens(stack, account)).access_token;
}

/** The same, the whole token answer (access, refresh with offline_access, ID token). */
export async function userTokens(stack, account, scope = 'openid profile email') {
  return sessionTokens(stack, await signIn(stack, account), scope);
}

/** The token answer for a session token (single-use: from signIn or activateWithTotp). */
export async function sessionTokens(stack, sessionToken, scope = 'openid profile email') {
  const p = pkce();
  const redirect = `${stack.url}/console/callback`;
  const u = new URL('/oauth2/authorize', stack.url);
  const params = {
    response_type: 'code', client_id: 'console-web', redirect_uri: redirect, scope,
    state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', session_token: sessionToken,
  };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const r = await stack.fetch(u.toString(), { redirect: 'manual' });
  if (r.status !== 302) throw new Error(`authorize: ${r.status} ${await r.text()}`);
  const code = new URL(r.headers.get('location')).searchParams.get('code');
  const t = await stack.request('/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: redirect }).toString(),
  });
  if (t.status !== 200) throw new Error(`token: ${t.status} ${t.text}`);
  return t.json;
}

/** Grants role on tenant to a principal directly (until the grants API is used). */
export async function grant(stack, principalId, role, tenantId, kind = 'user') {
  await sql(
    stack,
    `INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id, created_by)
     SELECT gen_random_uuid(), :'p1', :'p2', :'p3', t.id, t.msp_id, 'e2e' FROM tenants.tenants t WHERE t.id = :'p4'`,
    [principalId, kind, role, tenantId],
  );
}
