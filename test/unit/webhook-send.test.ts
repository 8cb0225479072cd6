import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http'
import { lookup } from 'node:dns/promises'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import ipaddr from 'ipaddr.js'
import { Webhook } from 'standardwebhooks'
import t, { type Test } from 'tap'
import { sendWebhook } from '../../lib/webhooks/send.ts'
import { newWebhookSecret, signedHeaders } from '../../lib/webhooks/signing.ts'
import { checkWebhookUrl } from '../../lib/webhooks/targets.ts'

const LOCAL = { http: true, private: true }

interface Received { headers: IncomingHttpHeaders, body: string }

/** A receiver on 127.0.0.1 that records what reached it; closed at the end of the test. */
async function receiver (t: Test, handle: RequestListener): Promise<{ url: string, port: number, hits: Received[] }> {
  const hits: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      hits.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      handle(req, res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hook?x=1`, port, hits }
}

const reply = (status: number, body = '', headers: Record<string, string> = {}): RequestListener => (_req, res) => {
  res.writeHead(status, headers)
  res.end(body)
}

t.test('a 200 or 204 is delivered; the receiver gets the exact body and headers, and the signature verifies', async t => {
  for (const status of [200, 204]) {
    const r = await receiver(t, reply(status))
    const secret = newWebhookSecret()
    const body = JSON.stringify({ type: 'booking.confirmed', data: { seats: ['A1', 'A2'], note: 'çà ✓' } })
    const headers = { ...signedHeaders(secret, 'msg_1', body, new Date()), 'x-extra': 'yes' }
    const outcome = await sendWebhook({ url: r.url, headers, body, timeoutMs: 2000, allow: LOCAL })
    t.equal(outcome.kind, 'delivered', `${status} delivered`)
    t.equal(outcome.kind === 'delivered' && outcome.status, status)
    t.equal(r.hits.length, 1)
    const got = r.hits[0]
    t.equal(got.body, body, 'exact body')
    t.equal(got.headers['content-type'], 'application/json')
    t.equal(got.headers['content-length'], String(Buffer.byteLength(body)))
    t.equal(got.headers['x-extra'], 'yes')
    for (const [name, value] of Object.entries(headers)) t.equal(got.headers[name], value, name)
    t.match(got.headers['webhook-signature'], /^v1,/)
    t.same(new Webhook(secret).verify(got.body, got.headers as Record<string, string>), JSON.parse(body), 'signature verifies')
    t.throws(() => new Webhook(newWebhookSecret()).verify(got.body, got.headers as Record<string, string>), 'another secret does not verify')
  }
})

t.test('plain http is refused unless allowed, and nothing is sent', async t => {
  const r = await receiver(t, reply(200))
  const outcome = await sendWebhook({ url: r.url, headers: {}, body: '{}', timeoutMs: 2000, allow: { http: false, private: true } })
  t.equal(outcome.kind, 'failed')
  t.match(outcome.kind === 'failed' && outcome.error, /http/)
  t.equal(r.hits.length, 0, 'receiver not hit')
})

t.test('private addresses are refused unless allowed, and nothing is sent', async t => {
  const r = await receiver(t, reply(200))
  const allow = { http: true, private: false }
  for (const url of [`http://127.0.0.1:${r.port}/`, `http://localhost:${r.port}/`, `http://[::ffff:127.0.0.1]:${r.port}/`]) {
    const outcome = await sendWebhook({ url, headers: {}, body: '{}', timeoutMs: 2000, allow })
    t.equal(outcome.kind, 'failed', url)
    t.match(outcome.kind === 'failed' && outcome.error, /not allowed|not public/, url)
  }
  t.equal(r.hits.length, 0, 'receiver not hit')
})

t.test('a name that resolves to a private address is refused at connect time', async t => {
  const r = await receiver(t, reply(200))
  const name = hostname()
  const url = `http://${name}:${r.port}/`
  const allow = { http: true, private: false }
  // the URL check cannot know where the name points, so it lets it through
  t.equal(checkWebhookUrl(url, allow), null, 'the name passes the URL check')
  const resolved = await lookup(name).catch(() => undefined)
  if (resolved === undefined || ipaddr.process(resolved.address).range() === 'unicast') {
    t.comment(`${name} resolves to ${resolved?.address ?? 'nothing'}: no private name to test the connect-time check with`)
    return
  }
  const outcome = await sendWebhook({ url, headers: {}, body: '{}', timeoutMs: 2000, allow })
  t.equal(outcome.kind, 'failed')
  t.match(outcome.kind === 'failed' && outcome.error, /address refused/)
  t.equal(r.hits.length, 0, 'receiver not hit')
  // and with private addresses allowed the same name is delivered to
  const allowed = await sendWebhook({ url, headers: {}, body: '{}', timeoutMs: 2000, allow: LOCAL })
  t.equal(allowed.kind, 'delivered')
  t.equal(r.hits.length, 1)
})

t.test('redirects are not followed', async t => {
  for (const status of [301, 302]) {
    const elsewhere = await receiver(t, reply(200))
    const r = await receiver(t, reply(status, '', { location: elsewhere.url }))
    const outcome = await sendWebhook({ url: r.url, headers: {}, body: '{}', timeoutMs: 2000, allow: LOCAL })
    t.match(outcome, { kind: 'failed', status, error: 'redirect not followed (3xx)', gone: false }, `${status}`)
    t.equal(r.hits.length, 1)
    t.equal(elsewhere.hits.length, 0, 'redirect target not hit')
  }
})

t.test('410 is gone; 500 is a plain failure with its status and the start of the answer', async t => {
  const gone = await receiver(t, reply(410))
  const goneOutcome = await sendWebhook({ url: gone.url, headers: {}, body: '{}', timeoutMs: 2000, allow: LOCAL })
  t.match(goneOutcome, { kind: 'failed', status: 410, gone: true, error: /^HTTP 410/ })

  const broken = await receiver(t, reply(500, `oops\n${'x'.repeat(1000)}`))
  const brokenOutcome = await sendWebhook({ url: broken.url, headers: {}, body: '{}', timeoutMs: 2000, allow: LOCAL })
  t.match(brokenOutcome, { kind: 'failed', status: 500, gone: false, error: /^HTTP 500: oops x/ })
  t.ok(brokenOutcome.kind === 'failed' && brokenOutcome.error.length <= 'HTTP 500: '.length + 200, 'snippet is short')
})

t.test('a huge answer is cut off after a few KB', async t => {
  const total = 10 * 1024 * 1024
  let written = 0
  let cutOff!: (finished: boolean) => void
  const ended = new Promise<boolean>(resolve => { cutOff = resolve })
  const r = await receiver(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(total) })
    res.on('close', () => cutOff(res.writableFinished))
    const chunk = Buffer.alloc(64 * 1024, 'a')
    const pump = async (): Promise<void> => {
      while (written < total && !res.destroyed) {
        written += chunk.length
        if (!res.write(chunk)) await once(res, 'drain').catch(() => {})
        // let the sender read between chunks
        await new Promise(resolve => setImmediate(resolve))
      }
      res.end()
    }
    void pump()
  })
  const outcome = await sendWebhook({ url: r.url, headers: {}, body: '{}', timeoutMs: 5000, allow: LOCAL })
  t.match(outcome, { kind: 'delivered', status: 200 })
  t.equal(await ended, false, 'the receiver saw the connection close before it finished writing')
  t.ok(written < total, `the receiver wrote ${written} of ${total} bytes`)
})

t.test('a receiver that never answers times out', async t => {
  const r = await receiver(t, () => {})
  const outcome = await sendWebhook({ url: r.url, headers: {}, body: '{}', timeoutMs: 300, allow: LOCAL })
  t.equal(outcome.kind, 'failed')
  t.match(outcome.kind === 'failed' && outcome.error, /timeout/)
  t.equal(r.hits.length, 1)
})

t.test('a refused connection is a failure, not a throw', async t => {
  const outcome = await sendWebhook({ url: 'http://127.0.0.1:1/', headers: {}, body: '{}', timeoutMs: 2000, allow: LOCAL })
  t.match(outcome, { kind: 'failed', gone: false, error: /ECONNREFUSED/ })
})

t.test('checkWebhookUrl', async t => {
  const none = { http: false, private: false }
  const all = { http: true, private: true }
  t.equal(checkWebhookUrl('https://example.com/hook', none), null, 'https public')
  t.equal(checkWebhookUrl('https://93.184.216.34/hook', none), null, 'https public literal')
  t.type(checkWebhookUrl('http://example.com/hook', none), 'string', 'http refused')
  t.equal(checkWebhookUrl('http://example.com/hook', { http: true, private: false }), null, 'http when allowed')
  for (const host of ['10.0.0.1', '192.168.1.1', '169.254.169.254', '[::1]', '[fc00::1]', '127.1', '0x7f000001', '[::ffff:10.0.0.1]', 'localhost', 'api.localhost', 'LOCALHOST.']) {
    const url = `https://${host}/hook`
    t.type(checkWebhookUrl(url, none), 'string', `${host} refused`)
    t.equal(checkWebhookUrl(url, { http: false, private: true }), null, `${host} allowed with private`)
  }
  for (const url of ['ftp://x', 'not a url', 'https://user:pw@example.com', 'https://user@example.com', 'file:///etc/passwd']) {
    t.type(checkWebhookUrl(url, all), 'string', `${url} refused even with everything allowed`)
  }
})

t.test('newWebhookSecret', async t => {
  const a = newWebhookSecret()
  const b = newWebhookSecret()
  t.match(a, /^whsec_[A-Za-z0-9+/]{32}$/)
  t.not(a, b)
  t.doesNotThrow(() => new Webhook(a))
})
