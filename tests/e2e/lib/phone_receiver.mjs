// A local HTTP receiver standing in for the SMS and voice provider of the webhook adapter:
// it checks each call's HMAC-SHA256 signature (X-Console-Timestamp and X-Console-Signature
// over "<timestamp>.<body>") and keeps the codes, so a test reads them back as a phone
// would. The same protocol as docs/identity-phone.md.
import { createServer } from 'node:http';
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/**
 * Starts a receiver on a free loopback port: {env (the CONSOLE_SMS_* settings that point
 * identity at it), calls, badSignatures, lastCall(number), close()}.
 */
export async function startPhoneReceiver(extraEnv = {}) {
  const secret = randomBytes(33).toString('base64url');
  const r = { calls: [], badSignatures: 0 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ts = req.headers['x-console-timestamp'] || '';
      const sig = req.headers['x-console-signature'] || '';
      const want = 'v1=' + createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex');
      if (sig.length !== want.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(want))) {
        r.badSignatures++;
        res.writeHead(401).end();
        return;
      }
      r.calls.push({ headers: req.headers, json: JSON.parse(body.toString('utf8')) });
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  r.env = {
    CONSOLE_SMS_WEBHOOK_URL: `http://127.0.0.1:${server.address().port}/sms`,
    CONSOLE_SMS_WEBHOOK_SECRET: secret,
    CONSOLE_SMS_TIMEOUT_MS: '2000',
    ...extraEnv,
  };
  r.lastCall = (number) => r.calls.filter((x) => x.json.to === number).at(-1);
  r.count = (number) => r.calls.filter((x) => x.json.to === number).length;
  r.close = () => {
    server.closeAllConnections();
    server.close();
  };
  return r;
}

/** A fresh Japanese mobile number in E.164. */
export const newNumber = () => `+8190${String(randomInt(0, 1e8)).padStart(8, '0')}`;
