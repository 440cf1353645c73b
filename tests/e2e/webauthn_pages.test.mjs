// WebAuthn on the hosted pages in Chromium with its virtual authenticator (CDP
// WebAuthn domain): activation -> security key enrolment on /mfa/enroll -> signed in;
// then /login -> /mfa answers with the key. The RP ID must be a domain name, so this
// stack runs with CONSOLE_WEBAUTHN_RP_ID=localhost and the browser uses
// http://localhost:<port> (the default origins then include it).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './lib/browser.mjs';
import { useStack } from './lib/stack.mjs';
import { GOOD_PASSWORD, sql, stageUser } from './lib/identity.mjs';

const s = useStack({ env: { CONSOLE_WEBAUTHN_RP_ID: 'localhost' } });
const st = () => s.stack;
const base = () => `http://localhost:${st().base}`;
let browser;

before(async () => {
  browser = await launchChromium();
});
after(async () => browser && (await browser.close()));

describe('WebAuthn on the hosted pages (Chromium virtual authenticator)', () => {
  test('enrol a security key at activation, then sign in with it', async () => {
    const staged = await stageUser(st(), { first: 'Key', last: 'Holder' });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: false, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });

    await page.goto(`${base()}/activate?token=${staged.token}&lang=en`);
    await page.fill('#password', GOOD_PASSWORD);
    await page.fill('#recovery_question', 'First pet?');
    await page.fill('#recovery_answer', 'Tama the cat');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\/enroll/);
    await page.click('#use-webauthn');
    await page.waitForSelector('#webauthn-start');
    const r = await page.reload();
    assert.match(r.headers()['content-security-policy'], /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(r.headers()['content-security-policy'], /unsafe-inline/);
    await page.click('#webauthn-start');
    await page.waitForSelector('#done', { timeout: 15000 });

    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    const stored = JSON.parse(await sql(st(), `SELECT profile::text FROM identity.factors WHERE user_id = :'p1' AND type = 'webauthn' AND status = 'active'`, [staged.id]));
    assert.equal(stored.credential_id, Buffer.from(credentials[0].credentialId, 'base64').toString('base64url'));
    assert.equal(stored.alg, -7);
    assert.equal(stored.uv, true);

    // a later sign-in: username, password, then the key on /mfa
    await page.goto(`${base()}/login?lang=en`);
    await page.fill('#username', staged.username);
    await page.click('button[type=submit]');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa/);
    await page.click('#webauthn-start');
    await page.waitForSelector('#done', { timeout: 15000 });
    const count = Number(await sql(st(), `SELECT profile->>'sign_count' FROM identity.factors WHERE user_id = :'p1' AND type = 'webauthn'`, [staged.id]));
    assert.ok(count >= 1, `sign count ${count}`);
    const signedIn = await sql(st(), `SELECT count(*) FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' AND details->>'factor_type' = 'webauthn'`, [staged.id]);
    assert.equal(signedIn, '2', 'activation and the sign-in');

    await ctx.close();
  });
});
