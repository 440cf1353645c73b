// The e-mail code, SMS and voice-call factors on the hosted pages in a real browser
// (Debian chromium driven by playwright-core), through the real gateway: enrolment at
// activation on /mfa/enroll (the e-mail code read from the .eml mail files, SMS and voice
// codes from a local receiver standing in for the provider's signed webhook), then a
// sign-in on /login and /mfa choosing among the person's factors ("use another method"),
// sending and re-sending codes, the rate limits shown as a clear error (en and ja), a
// phone number checked as the API checks it, and a policy that allows some types only.
// Screenshots go to $E2E_SCREENSHOTS (default: <tmp>/console-e2e-screenshots).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, screenshot } from './lib/browser.mjs';
import { useStack, waitFor } from './lib/stack.mjs';
import { jsonApi } from './lib/api.mjs';
import { GOOD_PASSWORD, readMails, sql, stageUser } from './lib/identity.mjs';
import { newNumber, startPhoneReceiver } from './lib/phone_receiver.mjs';

// no minimum gap between two codes (its own unit test), three codes per user an hour
const receiver = await startPhoneReceiver({ CONSOLE_SMS_RESEND_SECONDS: '0', CONSOLE_SMS_MAX_PER_USER: '3' });
after(() => receiver.close());
const s = useStack({ env: receiver.env });
const st = () => s.stack;
let browser;

before(async () => {
  browser = await launchChromium();
});
after(async () => browser && (await browser.close()));

const shot = screenshot;

/** The newest code mailed to username after `since` mails. */
async function mailedCode(username, since) {
  return waitFor(
    () => {
      const m = readMails(st()).slice(since).filter((x) => x.headers.to?.includes(username)).at(-1);
      return m && /(\d{6})/.exec(m.headers.subject)?.[1];
    },
    { what: `a code mailed to ${username}` },
  );
}
const phoneCode = (number) => waitFor(() => receiver.lastCall(number)?.json.code, { what: `a code sent to ${number}` });

/** Clicks a form's button and waits for the page it posts to; its HTTP status. */
async function submit(page, selector) {
  const [resp] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return resp.status();
}

/** Opens the activation link and sets the password: the browser lands on /mfa/enroll. */
async function activate(page, staged, lang = 'en') {
  await page.goto(`${st().url}/activate?token=${staged.token}&lang=${lang}`);
  await page.fill('#password', GOOD_PASSWORD);
  await page.fill('#recovery_question', 'First pet?');
  await page.fill('#recovery_answer', 'Tama the cat');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/mfa\/enroll/);
}

/** Username then password on /login: the browser lands on /mfa. */
async function password(page, username, lang = 'en') {
  await page.goto(`${st().url}/login?lang=${lang}`);
  await page.fill('#username', username);
  await page.click('button[type=submit]');
  await page.fill('#password', GOOD_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/mfa\?/);
}

describe('e-mail, SMS and voice factors on the hosted pages', () => {
  test('e-mail code: enrol at activation, then sign in; a second send too soon is refused clearly', async (t) => {
    const staged = await stageUser(st(), { first: 'Mail', last: 'Person' });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await activate(page, staged);
    // the authenticator app by default, and every other type this deployment offers
    assert.ok(await page.textContent('#secret'));
    for (const type of ['email', 'webauthn', 'sms', 'voice']) assert.equal(await page.locator(`#other-methods #use-${type}`).count(), 1, type);
    await shot(t, page, 'f1-enroll-default');
    await page.click('#use-email');
    await page.waitForURL(/type=email/);
    assert.match(await page.textContent('#destination'), /u•••@example\.com/);
    await shot(t, page, 'f2-enroll-email');
    let since = readMails(st()).length;
    await page.click('#send-code');
    await page.waitForSelector('#pass_code');
    assert.match(await page.textContent('#destination'), /We sent a 6-digit code/);
    const code = await mailedCode(staged.username, since);
    await page.fill('#pass_code', code === '000000' ? '111111' : '000000');
    assert.equal(await submit(page, '#verify button[type=submit]'), 403);
    assert.match(await page.textContent('#error'), /wrong/);
    assert.equal(await page.locator('#send-code').count(), 1, 'the resend button stays after a wrong code');
    await page.fill('#pass_code', code);
    await page.click('#verify button[type=submit]');
    assert.ok(await page.textContent('#done'));
    assert.equal(await sql(st(), `SELECT type FROM identity.factors WHERE user_id = :'p1' AND status = 'active'`, [staged.id]), 'email', 'the pending app factor of the first page stays unused');
    await ctx.close();

    const ctx2 = await browser.newContext();
    const p2 = await ctx2.newPage();
    await password(p2, staged.username);
    assert.match(await p2.textContent('#destination'), /We will send a 6-digit code to u•••@example\.com/);
    assert.equal(await p2.locator('#other-methods').count(), 0, 'one factor: nothing else to choose');
    await shot(t, p2, 'f3-mfa-email');
    since = readMails(st()).length;
    assert.equal(await submit(p2, '#send-code'), 200);
    assert.match(await p2.textContent('#destination'), /We sent/);
    const signInCode = await mailedCode(staged.username, since);
    // at most one mail per 30 seconds per factor: the page says so, and the code still works
    assert.equal(await submit(p2, '#send-code'), 429);
    assert.match(await p2.textContent('#error'), /A code was sent a moment ago\. Use it, or ask for a new one in \d+ seconds\./);
    await shot(t, p2, 'f4-mfa-email-too-soon');
    await p2.fill('#pass_code', signInCode);
    await p2.click('#verify button[type=submit]');
    assert.ok(await p2.textContent('#done'));
    const audit = await sql(st(), `SELECT details->>'factor_type' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' ORDER BY at DESC LIMIT 1`, [staged.id]);
    assert.equal(audit, 'email');
    await ctx2.close();
  });

  test('SMS: the number is checked, the code arrives by the signed webhook; another factor is one click away', async (t) => {
    const staged = await stageUser(st(), { first: 'Text', last: 'Person' });
    const number = newNumber();
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await activate(page, staged);
    await page.click('#use-sms');
    await page.waitForSelector('#phone_number');
    await page.fill('#phone_number', '090-1234-5678');
    assert.equal(await submit(page, '#send-code'), 400);
    assert.match(await page.textContent('#error'), /international format/);
    assert.equal(receiver.count('090-1234-5678'), 0);
    await shot(t, page, 'f5-enroll-sms-bad-number');
    await page.fill('#phone_number', number);
    await page.click('#send-code');
    await page.waitForSelector('#pass_code');
    assert.match(await page.textContent('#destination'), new RegExp(`text message to \\+81•••••${number.slice(-4)}`));
    const call = receiver.lastCall(number);
    assert.equal(call.json.channel, 'sms');
    await shot(t, page, 'f6-enroll-sms-code');
    await page.fill('#pass_code', await phoneCode(number));
    await page.click('#verify button[type=submit]');
    assert.ok(await page.textContent('#done'));
    assert.equal(receiver.badSignatures, 0);
    assert.equal(await sql(st(), `SELECT profile->>'phone' FROM identity.factors WHERE user_id = :'p1' AND type = 'sms' AND status = 'active'`, [staged.id]), number);
    await ctx.close();

    // a second factor (an e-mail one) comes first on /mfa; the SMS one is a link away
    await sql(st(), `INSERT INTO identity.factors (id, user_id, msp_id, type, status, profile, activated_at)
      SELECT gen_random_uuid(), id, msp_id, 'email', 'active', jsonb_build_object('email', primary_email), now() FROM users.users WHERE id = :'p1'`, [staged.id]);
    const ctx2 = await browser.newContext();
    const p2 = await ctx2.newPage();
    await password(p2, staged.username);
    assert.match(await p2.textContent('#destination'), /@example\.com/);
    assert.match(await p2.textContent('#other-methods'), /Use another method/);
    await shot(t, p2, 'f7-mfa-choose');
    await p2.click('#other-methods #use-sms');
    await p2.waitForURL(/factor=/);
    assert.match(await p2.textContent('#destination'), new RegExp(`text message to \\+81•••••${number.slice(-4)}`));
    assert.equal(await p2.locator('#other-methods #use-email').count(), 1, 'and back');
    const before = receiver.count(number);
    assert.equal(await submit(p2, '#send-code'), 200);
    assert.equal(receiver.count(number), before + 1);
    await p2.fill('#pass_code', await phoneCode(number));
    await p2.click('#verify button[type=submit]');
    assert.ok(await p2.textContent('#done'));
    const audit = await sql(st(), `SELECT details->>'factor_type' FROM identity.audit_events WHERE target_id = :'p1' AND action = 'user.signed_in' ORDER BY at DESC LIMIT 1`, [staged.id]);
    assert.equal(audit, 'sms');
    await ctx2.close();
  });

  test('voice call in Japanese: enrol, sign in, and the per-user cap shown in Japanese', async (t) => {
    const staged = await stageUser(st(), { first: '花子', last: '山田', language: 'ja' });
    const number = newNumber();
    const ctx = await browser.newContext({ locale: 'ja-JP', extraHTTPHeaders: { 'accept-language': 'ja,en;q=0.5' } });
    const page = await ctx.newPage();
    await activate(page, staged, 'ja');
    await page.click('#use-voice');
    await page.waitForSelector('#phone_number');
    assert.match(await page.textContent('h1'), /音声通話でのコードの設定/);
    await shot(t, page, 'f8-enroll-voice-ja');
    await page.fill('#phone_number', number);
    await page.click('#send-code');
    await page.waitForSelector('#pass_code');
    assert.match(await page.textContent('#destination'), /電話をかけて/);
    const call = receiver.lastCall(number);
    assert.equal(call.json.channel, 'voice');
    assert.equal(call.json.lang, 'ja');
    await page.fill('#pass_code', await phoneCode(number));
    await page.click('#verify button[type=submit]');
    assert.ok(await page.textContent('#done'));
    await ctx.close();

    const ctx2 = await browser.newContext({ locale: 'ja-JP', extraHTTPHeaders: { 'accept-language': 'ja,en;q=0.5' } });
    const p2 = await ctx2.newPage();
    await password(p2, staged.username, 'ja');
    assert.match(await p2.textContent('#destination'), /に電話をかけて 6 桁のコードをお知らせします/);
    assert.equal(await submit(p2, '#send-code'), 200); // the second code of the hour
    assert.equal(await submit(p2, '#send-code'), 200); // the third
    const last = await phoneCode(number);
    assert.equal(await submit(p2, '#send-code'), 429); // the fourth: over the cap of three an hour
    assert.match(await p2.textContent('#error'), /コードの要求が多すぎます。\d+ 分後/);
    assert.equal(receiver.count(number), 3);
    await shot(t, p2, 'f9-mfa-voice-cap-ja');
    await p2.fill('#pass_code', last);
    await p2.click('#verify button[type=submit]');
    assert.ok(await p2.textContent('#done'));
    await ctx2.close();
  });

  test('a policy that allows SMS and voice only: the enrolment page offers those two', async (t) => {
    const platform = jsonApi(st(), await st().token());
    const msp = (await platform('POST', '/api/v1/tenants', { name: 'Pages Policy MSP', kind: 'msp' })).json;
    const cust = (await platform('POST', '/api/v1/tenants', { name: 'Pages Policy Customer', kind: 'customer', parent_id: msp.id })).json;
    const put = await platform('PUT', `/api/v1/tenants/${cust.id}/mfa-policy`, { allowed_factors: ['sms', 'voice'], mfa_required: true });
    assert.equal(put.status, 200, put.text);
    const staged = await stageUser(st(), { tenantId: cust.id });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await activate(page, staged);
    assert.equal(await page.locator('#secret').count(), 0, 'no authenticator app under this policy');
    const offered = await page.$$eval('#methods a', (as) => as.map((a) => a.id));
    assert.deepEqual(offered, ['use-sms', 'use-voice']);
    await shot(t, page, 'f10-enroll-chooser');
    const r = await page.goto(`${st().url}/mfa/enroll?lang=en&type=email`);
    assert.equal(r.status(), 403);
    assert.match(await page.textContent('#error'), /does not allow this method/);
    // a forged post for a type the policy refuses creates nothing
    const csrf = (await ctx.cookies()).find((c) => c.name === 'console_csrf').value;
    const forged = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.evaluate((token) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = '/mfa/enroll?lang=en';
      for (const [k, v] of Object.entries({ csrf: token, op: 'send', type: 'email' })) {
        const i = document.createElement('input');
        i.name = k;
        i.value = v;
        f.appendChild(i);
      }
      document.body.appendChild(f);
      f.submit();
    }, csrf);
    assert.equal((await forged).status(), 403);
    await page.waitForLoadState();
    assert.match(await page.textContent('#error'), /does not allow this method/);
    assert.equal(await sql(st(), `SELECT count(*) FROM identity.factors WHERE user_id = :'p1'`, [staged.id]), '0');
    await ctx.close();
  });
});
