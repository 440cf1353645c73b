// Remember-device and step-up, in a real browser (Debian chromium, playwright-core) with a
// real OpenID Connect relying party (openid-client) checking the ID tokens: a customer's
// policy allows remembering browsers for 7 days; after a second factor with the box ticked
// the next password sign-in on that browser skips the factor (amr pwd+rmb, acr 1fa), but
// not for another user, not when the client asks for acr_values=urn:console:loa:mfa or
// max_age (a fresh factor: acr mfa, a new auth_time), not after the person revokes it or
// the policy turns it off, and an admin's factor reset forgets it. MSP staff are never
// offered the box. Screenshots go to $E2E_SCREENSHOTS.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { launchChromium, screenshot } from './lib/browser.mjs';
import * as oidc from 'openid-client';
import { useStack } from './lib/stack.mjs';
import { assertProblem, jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, activateWithTotp, nextTotp, registerClient, sha256hex, sql, stageUser } from './lib/identity.mjs';

const ACR_MFA = 'urn:console:loa:mfa';
const s = useStack();
const st = () => s.stack;
let browser;

before(async () => {
  browser = await launchChromium();
});
after(async () => browser && (await browser.close()));

const shot = screenshot;

describe('remember-device and step-up', () => {
  const clientId = `rmb-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  let platform, msp, cust, config, redirectUri, alice, bob, ctx, page;

  before(async () => {
    platform = jsonApi(st(), await st().token());
    msp = (await platform('POST', '/api/v1/tenants', { name: 'Remember MSP', kind: 'msp' })).json;
    cust = (await platform('POST', '/api/v1/tenants', { name: 'Remember Customer', kind: 'customer', parent_id: msp.id })).json;
    const put = await platform('PUT', `/api/v1/tenants/${cust.id}/mfa-policy`, { allowed_factors: ['totp', 'email'], mfa_required: true, remember_device: true, remember_device_days: 7 });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.remember_device_days, 7);
    alice = await activateWithTotp(st(), await stageUser(st(), { tenantId: cust.id, first: 'Alice' }));
    bob = await activateWithTotp(st(), await stageUser(st(), { tenantId: cust.id, first: 'Bob' }));
    redirectUri = `${st().url}/rp/cb`;
    await registerClient(st(), { clientId, secret, redirectUris: [redirectUri] });
    config = await oidc.discovery(new URL(st().url), clientId, undefined, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    ctx = await browser.newContext();
    page = await ctx.newPage();
    await page.route(`${redirectUri}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party' }));
  });
  after(async () => ctx && (await ctx.close()));

  /** Starts an authorization request of the relying party in the browser. */
  async function authorize(extra = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid profile', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    await page.goto(url.toString());
    return { verifier, state, nonce, maxAge: extra.max_age ? Number(extra.max_age) : undefined };
  }
  /** Username and password on /login (the browser is there). */
  async function password(account) {
    await page.waitForURL(/\/login\?/);
    await page.fill('#username', account.username);
    await page.click('button[type=submit]');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button[type=submit]');
  }
  /** The code at the relying party, exchanged and checked by openid-client. */
  async function tokens(req) {
    await page.waitForURL((u) => u.toString().startsWith(redirectUri));
    const t = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true, maxAge: req.maxAge,
    });
    return { ...t, idClaims: t.claims() };
  }
  const devices = (user) => sql(st(), `SELECT count(*) FROM identity.remembered_devices WHERE user_id = :'p1'`, [user.id]);

  test('the box after a second factor; the next password sign-in skips the factor (amr pwd+rmb, acr 1fa)', async (t) => {
    const req = await authorize();
    await password(alice);
    await page.waitForURL(/\/mfa\?/);
    assert.match(await page.textContent('label:has(#remember)'), /Remember this browser for 7 days/);
    await shot(t, page, 'r1-mfa-remember');
    await page.check('#remember');
    await page.fill('#pass_code', await nextTotp(alice));
    await page.click('#verify button[type=submit]');
    const first = await tokens(req);
    assert.equal(first.idClaims.acr, ACR_MFA);
    assert.ok(first.idClaims.amr.includes('mfa'));

    const cookie = (await ctx.cookies()).find((c) => c.name === 'console_rmb');
    assert.ok(cookie, 'the remembered-browser cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/login');
    const days = (cookie.expires - Date.now() / 1000) / 86400;
    assert.ok(days > 6.9 && days <= 7.01, `expires in ${days} days`);
    const stored = await sql(st(), `SELECT token_hash FROM identity.remembered_devices WHERE user_id = :'p1'`, [alice.id]);
    assert.match(stored, /^[0-9a-f]{64}$/);
    assert.notEqual(stored, sha256hex(cookie.value), 'keyed: not the plain digest of the cookie');
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.device_remembered'`, [alice.id]), '1');

    // prompt=login: the password again, and no second factor on this browser
    const req2 = await authorize({ prompt: 'login' });
    await password(alice);
    const second = await tokens(req2);
    assert.deepEqual(second.idClaims.amr, ['pwd', 'rmb']);
    assert.equal(second.idClaims.acr, 'urn:console:loa:1fa', 'a remembered browser is not a fresh second factor');
    const at = JSON.parse(Buffer.from(second.access_token.split('.')[1], 'base64url').toString());
    assert.deepEqual(at.amr, ['pwd', 'rmb']);
    const audit = await sql(st(), `SELECT details->>'factor_type' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' ORDER BY at DESC LIMIT 1`, [alice.id]);
    assert.equal(audit, 'remembered_device');
    // such a token cannot change factors: that needs a factor
    assertProblem(await st().request('/api/v1/me/recovery-codes', { method: 'POST', auth: second.access_token }), 403, 'reauthentication_required');
    alice.rmbToken = second.access_token;
  });

  test('step-up: acr_values=urn:console:loa:mfa and max_age get a fresh second factor despite the remembered browser', async (t) => {
    // the browser session says pwd+rmb: not enough for this client's request
    const before = Math.floor(Date.now() / 1000);
    const req = await authorize({ acr_values: ACR_MFA });
    await password(alice);
    await page.waitForURL(/\/mfa\?/);
    await shot(t, page, 'r2-step-up-mfa');
    await page.fill('#pass_code', await nextTotp(alice));
    await page.click('#verify button[type=submit]');
    const up = await tokens(req);
    assert.equal(up.idClaims.acr, ACR_MFA);
    assert.ok(up.idClaims.amr.includes('mfa'), JSON.stringify(up.idClaims.amr));
    assert.ok(up.idClaims.auth_time >= before - 1, 'a new sign-in');

    // the session now has MFA: the same request passes without any page
    const again = await authorize({ acr_values: ACR_MFA });
    const quiet = await tokens(again);
    assert.equal(quiet.idClaims.acr, ACR_MFA);
    assert.equal(quiet.idClaims.auth_time, up.idClaims.auth_time);

    // an hour-old session and max_age=600: the password and a factor again (not the remembered browser)
    await sql(st(), `UPDATE identity.sessions SET auth_time = auth_time - interval '1 hour' WHERE user_id = :'p1'`, [alice.id]);
    const aged = await authorize({ max_age: '600' });
    await password(alice);
    await page.waitForURL(/\/mfa\?/);
    await page.fill('#pass_code', await nextTotp(alice));
    await page.click('#verify button[type=submit]');
    const fresh = await tokens(aged);
    assert.equal(fresh.idClaims.acr, ACR_MFA);
    assert.ok(fresh.idClaims.auth_time >= Math.floor(Date.now() / 1000) - 600);

    // prompt=none cannot step up: login_required
    await sql(st(), `UPDATE identity.sessions SET amr = '{pwd,rmb}' WHERE user_id = :'p1'`, [alice.id]);
    await page.goto(oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state: 'n', prompt: 'none', acr_values: ACR_MFA, code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' }).toString());
    await page.waitForURL((u) => u.toString().startsWith(redirectUri));
    assert.equal(new URL(page.url()).searchParams.get('error'), 'login_required');
  });

  test('never for another user of the same browser', async () => {
    await page.goto(`${st().url}/login?lang=en`);
    await page.fill('#username', bob.username);
    await page.click('button[type=submit]');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\?/);
    assert.equal(await devices(bob), '0');
  });

  test('the person lists and revokes; the policy turned off makes it inert; a factor reset forgets it', async () => {
    const list = await st().request('/api/v1/me/remembered-devices', { auth: alice.rmbToken });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.total, 1);
    assert.match(list.json.items[0].label, /Chrom/);
    assertProblem(await st().request(`/api/v1/me/remembered-devices/${randomBytes(16).toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}`, { method: 'DELETE', auth: alice.rmbToken }), 404, 'not_found');
    const del = await st().request(`/api/v1/me/remembered-devices/${list.json.items[0].id}`, { method: 'DELETE', auth: alice.rmbToken });
    assert.equal(del.status, 204, del.text);
    assert.equal(await devices(alice), '0');
    assert.equal(await sql(st(), `SELECT details->>'reason' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.remembered_devices_revoked'`, [alice.id]), 'user');
    const signInNeedsFactor = async (remember) => {
      await page.goto(`${st().url}/login?lang=en`);
      await page.fill('#username', alice.username);
      await page.click('button[type=submit]');
      await page.fill('#password', GOOD_PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      if (!/\/mfa\?/.test(page.url())) return false;
      if (remember) await page.check('#remember');
      await page.fill('#pass_code', await nextTotp(alice));
      await page.click('#verify button[type=submit]');
      await page.waitForSelector('#done');
      return true;
    };
    assert.equal(await signInNeedsFactor(true), true, 'revoked: the factor again (and remembered anew)');
    assert.equal(await devices(alice), '1');
    assert.equal(await signInNeedsFactor(false), false, 'remembered again');

    // the policy no longer allows it: the row is inert and the box is gone
    const off = await platform('PUT', `/api/v1/tenants/${cust.id}/mfa-policy`, { allowed_factors: ['totp', 'email'], mfa_required: true, remember_device: false });
    assert.equal(off.status, 200, off.text);
    await page.goto(`${st().url}/login?lang=en`);
    await page.fill('#username', alice.username);
    await page.click('button[type=submit]');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\?/);
    assert.equal(await page.locator('#remember').count(), 0);
    const on = await platform('PUT', `/api/v1/tenants/${cust.id}/mfa-policy`, { allowed_factors: ['totp', 'email'], mfa_required: true, remember_device: true, remember_device_days: 7 });
    assert.equal(on.status, 200, on.text);

    // an administrator resets the factors: the remembered browsers go too
    const reset = await platform('POST', `/api/v1/users/${alice.id}/factors/reset`);
    assert.equal(reset.status, 200, reset.text);
    assert.equal(await devices(alice), '0');
    assert.equal(await sql(st(), `SELECT details->>'reason' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.remembered_devices_revoked' ORDER BY at DESC LIMIT 1`, [alice.id]), 'factors_reset');
  });

  test('MSP staff are never offered the box, even under an MSP policy that allows it', async () => {
    assert.equal((await platform('PUT', `/api/v1/tenants/${msp.id}/mfa-policy`, { allowed_factors: ['totp'], mfa_required: true, remember_device: true })).status, 200);
    const staff = await activateWithTotp(st(), await stageUser(st(), { tenantId: msp.id }));
    const c2 = await browser.newContext();
    const p2 = await c2.newPage();
    await p2.goto(`${st().url}/login?lang=en`);
    await p2.fill('#username', staff.username);
    await p2.click('button[type=submit]');
    await p2.fill('#password', GOOD_PASSWORD);
    await p2.click('button[type=submit]');
    await p2.waitForURL(/\/mfa\?/);
    assert.equal(await p2.locator('#remember').count(), 0);
    await c2.close();
    // and the platform account refuses the setting
    const platformId = await sql(st(), "SELECT id FROM tenants.tenants WHERE kind = 'platform'");
    assertProblem(await platform('PUT', `/api/v1/tenants/${platformId}/mfa-policy`, { allowed_factors: ['totp'], mfa_required: true, remember_device: true }), 400, 'validation_failed');
  });
});
