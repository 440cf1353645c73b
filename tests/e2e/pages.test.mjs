// The hosted pages in a real browser (Debian chromium driven by playwright-core), through
// the real gateway: activation -> password (policy shown) -> TOTP enrolment; then an
// OpenID Connect sign-in of the console-web client through /login and /mfa back to the
// client's redirect URI with a code that the token endpoint accepts. Screenshots of every
// page go to $E2E_SCREENSHOTS (default: <tmp>/console-e2e-screenshots).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { SHOTS, launchChromium, screenshot } from './lib/browser.mjs';
import { useStack } from './lib/stack.mjs';
import { FORM, GOOD_PASSWORD, nextTotp, pkce, readMails, stageUser } from './lib/identity.mjs';

const s = useStack();
const st = () => s.stack;
let browser;

before(async () => {
  browser = await launchChromium();
});
after(async () => browser && (await browser.close()));

const shot = screenshot;

describe('hosted pages in Chromium', () => {
  let account;

  test('activation: weak password refused with the policy, then TOTP enrolment', async (t) => {
    const staged = await stageUser(st(), { first: 'Page', last: 'Tester' });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const r = await page.goto(`${st().url}/activate?token=${staged.token}`);
    assert.equal(r.status(), 200);
    assert.equal(r.headers()['x-frame-options'], 'DENY');
    assert.match(r.headers()['content-security-policy'], /default-src 'none'/);
    await shot(t, page, '1-activate');
    await page.fill('#password', 'alllowercase');
    await page.fill('#recovery_question', 'First pet?');
    await page.fill('#recovery_answer', 'Tama the cat');
    await page.click('button[type=submit]');
    const policy = await page.textContent('#policy');
    assert.match(policy, /uppercase_required/);
    assert.match(policy, /digit_required/);
    await shot(t, page, '2-activate-policy');
    await page.fill('#password', GOOD_PASSWORD);
    await page.fill('#recovery_question', 'First pet?');
    await page.fill('#recovery_answer', 'Tama the cat');
    await page.check('input[value=owl]');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\/enroll/);
    const secret = (await page.textContent('#secret')).trim();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.match(await page.getAttribute('#otpauth', 'href'), /^otpauth:\/\/totp\//);
    const qr = await page.$('svg#qr');
    assert.ok(qr, 'a QR code of the otpauth URI');
    assert.ok((await qr.boundingBox()).width >= 100);
    // the QR code decodes (Debian zbarimg) to exactly the otpauth URI with this secret
    const qrPng = join(SHOTS, 'qr.png');
    await qr.screenshot({ path: qrPng });
    const decoded = execFileSync('zbarimg', ['--raw', '-q', qrPng], { encoding: 'utf8' }).trim();
    assert.equal(decoded, await page.getAttribute('#otpauth', 'href'));
    assert.equal(new URL(decoded).searchParams.get('secret'), secret);
    await shot(t, page, '3-enroll-totp');
    account = { ...staged, password: GOOD_PASSWORD, secret, lastStep: -1 };
    await page.fill('#pass_code', '000000' === (await nextTotp({ ...account })) ? '111111' : '000000');
    await page.click('button[type=submit]');
    assert.match(await page.textContent('#error'), /wrong/);
    await page.fill('#pass_code', await nextTotp(account));
    await page.click('button[type=submit]');
    assert.ok(await page.textContent('#done'));
    await shot(t, page, '4-activated');
    await ctx.close();
  });

  test('sign-in through /login and /mfa returns to the client with a code (authorization code + PKCE)', async (t) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const callback = `${st().url}/console/callback`;
    await page.route(`${callback}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'client callback' }));
    const p = pkce();
    const url = new URL('/oauth2/authorize', st().url);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'console-web', redirect_uri: callback, scope: 'openid profile email', state: 'pg-state', nonce: 'pg-nonce', code_challenge: p.challenge, code_challenge_method: 'S256' }))
      url.searchParams.set(k, v);
    await page.goto(url.toString());
    await page.waitForURL(/\/login\?/);
    await shot(t, page, '5-login');
    // step one: the username; step two shows the image the user chose, then the password
    assert.equal(await page.locator('#password').count(), 0, 'no password field before the image');
    await page.fill('#username', account.username);
    await page.click('button[type=submit]');
    assert.match(await page.textContent('#image'), /owl/);
    await shot(t, page, '5b-login-image');
    await page.fill('#password', 'Wrong-Password-1');
    await page.click('button[type=submit]');
    assert.match(await page.textContent('#error'), /wrong/);
    assert.match(await page.textContent('#image'), /owl/);
    await page.fill('#password', account.password);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\?/);
    await shot(t, page, '6-mfa');
    await page.fill('#pass_code', await nextTotp(account));
    await page.click('button[type=submit]');
    await page.waitForURL(/\/console\/callback\?/);
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('state'), 'pg-state');
    const code = back.searchParams.get('code');
    assert.ok(code);
    const tok = await st().request('/oauth2/token', {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'console-web', code, code_verifier: p.verifier, redirect_uri: callback }).toString(),
    });
    assert.equal(tok.status, 200, tok.text);
    const me = await st().request('/api/v1/me', { auth: tok.json.access_token });
    assert.equal(me.json.email, account.username);
    // the cookies the pages set are HttpOnly, and the CSRF and flow cookies SameSite=Strict
    const cookies = await ctx.cookies();
    for (const c of cookies) assert.equal(c.httpOnly, true, c.name);
    assert.equal(cookies.find((c) => c.name === 'console_csrf')?.sameSite, 'Strict');
    assert.equal(cookies.find((c) => c.name === 'console_session')?.sameSite, 'Lax');
    await ctx.close();
  });

  test('the security image step tells nothing about which usernames exist', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const imageOf = async (username) => {
      await page.goto(`${st().url}/login`);
      await page.fill('#username', username);
      await page.click('button[type=submit]');
      return (await page.textContent('#image')).replace(/^.*:\s*/, '').trim();
    };
    const unknown = await imageOf('nobody-here@example.com');
    assert.ok(unknown.length > 0, 'an unknown name gets an image too');
    assert.equal(await imageOf('nobody-here@example.com'), unknown, 'and always the same one');
    assert.equal(await imageOf('NOBODY-HERE@example.com'), unknown, 'whatever the case');
    assert.equal(await imageOf(account.username), 'owl');
    await ctx.close();
  });

  test('forgotten password: the mailed link shows the question and the security image, then MFA', async (t) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${st().url}/login`);
    await page.click('#forgot');
    await page.waitForURL(/\/password\/forgot/);
    const before = readMails(st()).length;
    await page.fill('#username', account.username);
    await page.click('button[type=submit]');
    assert.ok(await page.textContent('#sent'));
    await shot(t, page, '8-forgot-sent');
    const mail = readMails(st()).slice(before).find((m) => m.headers.to?.includes(account.username));
    const link = /(http\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(mail.text)[1];
    await page.goto(link);
    assert.equal((await page.textContent('#question')).trim(), 'First pet?');
    assert.match(await page.textContent('#image'), /owl/);
    await shot(t, page, '9-reset');
    await page.fill('#recovery_answer', 'wrong answer');
    await page.fill('#password', 'Third-Harbor-99');
    await page.click('button[type=submit]');
    assert.match(await page.textContent('#error'), /wrong/);
    await page.fill('#recovery_answer', 'tama the CAT');
    await page.fill('#password', 'Third-Harbor-99');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/mfa\?/);
    await page.fill('#pass_code', await nextTotp(account));
    await page.click('button[type=submit]');
    assert.ok(await page.textContent('#done'));
    account.password = 'Third-Harbor-99';
    await ctx.close();
  });

  test('Japanese by Accept-Language', async (t) => {
    const ctx = await browser.newContext({ locale: 'ja-JP', extraHTTPHeaders: { 'accept-language': 'ja,en;q=0.5' } });
    const page = await ctx.newPage();
    await page.goto(`${st().url}/login`);
    assert.equal(await page.getAttribute('html', 'lang'), 'ja');
    assert.match(await page.textContent('h1'), /サインイン/);
    await shot(t, page, '7-login-ja');
    await ctx.close();
  });

  test('a form posted without the CSRF cookie is refused; the page cannot be framed', async () => {
    const r = await st().request('/login', {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ csrf: 'x'.repeat(43), username: account.username, password: account.password }).toString(),
    });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.match(r.headers.get('content-security-policy'), /frame-ancestors 'none'/);
    assert.equal(r.headers.get('set-cookie')?.includes('console_authn=') ?? false, false);
  });
});
