/**
 * The HTTP server's limits, on a real process with small values: a request
 * whose body (or headers) trickles in is answered 408 in the envelope and its
 * connection closed; an idle keep-alive connection is closed; connections
 * beyond MAX_CONNECTIONS are closed unanswered while the others are served.
 */
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { pgliteDataDir } from '../helpers/databases.ts'
import { pollUntil } from '../helpers/poll.ts'
import { startServer } from '../helpers/server-process.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()

interface Exchange {
  /** everything the server sent before the connection closed */
  received: string
  /** bytes we had written when it closed */
  sent: number
  /** the server ended the connection (not us) */
  closedByServer: boolean
}

/**
 * Writes `head`, then one byte of `drip` every `everyMs`, until the server
 * closes the connection (or everything is sent and it answers).
 */
async function trickle (url: string, head: string, drip: string, everyMs = 100): Promise<Exchange> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  await once(socket, 'connect')
  const result: Exchange = { received: '', sent: 0, closedByServer: false }
  socket.on('data', (d: Buffer) => { result.received += d.toString('latin1') })
  socket.on('end', () => { result.closedByServer = true })
  // a byte written after the server closed makes its kernel answer with a reset: closed by the server too
  socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNRESET') result.closedByServer = true })
  // 'close' follows an error as well (events.once would reject on the error and leave the timer running)
  const closed = new Promise<void>(resolve => socket.once('close', () => { resolve() }))
  socket.write(head)
  result.sent = head.length
  const timer = setInterval(() => {
    if (socket.destroyed || result.sent - head.length >= drip.length) return
    socket.write(drip[result.sent - head.length])
    result.sent++
  }, everyMs)
  try {
    await closed
  } finally {
    clearInterval(timer)
  }
  return result
}

/** The envelope of a raw HTTP answer. */
const bodyOf = (raw: string): any => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))

t.test('request, headers and keep-alive timeouts', async t => {
  const server = await startServer({ DATA_DIR: await pgliteDataDir(t), REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '500', KEEP_ALIVE_TIMEOUT_MS: '300' })
  t.teardown(async () => await server.stop())

  const body = JSON.stringify({ eventId: '0'.repeat(24), sectionId: '0'.repeat(24), qty: 1 }).padEnd(2000)
  // with a token: the request gets as far as reading its body
  const head = `POST /bookings HTTP/1.1\r\nHost: x\r\nAuthorization: ${as.service.authorization}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
  const slowBody = await trickle(server.url, head, body)
  t.match(slowBody.received, /^HTTP\/1\.1 408 Request Timeout\r\n/, 'a body trickling in: 408')
  t.same(bodyOf(slowBody.received), { success: false, error: { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' } }, 'in the envelope')
  t.ok(slowBody.closedByServer, 'and the server closed the connection')
  t.ok(slowBody.sent < head.length + body.length, `before the body was complete (${slowBody.sent - head.length} of ${body.length} bytes sent)`)

  const headers = Array.from({ length: 200 }, (_, i) => `X-Slow-${i}: 1\r\n`).join('')
  const slowHeaders = await trickle(server.url, 'GET /health HTTP/1.1\r\nHost: x\r\n', headers)
  t.match(slowHeaders.received, /^HTTP\/1\.1 408 Request Timeout\r\n/, 'headers trickling in: 408')
  t.ok(slowHeaders.closedByServer && slowHeaders.sent < 40 + headers.length, 'closed before the headers were complete')

  const idle = await trickle(server.url, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', '')
  t.match(idle.received, /^HTTP\/1\.1 200 OK\r\n[^]*keep-alive/i, 'a request answered on a keep-alive connection')
  t.ok(idle.closedByServer, 'the idle connection is then closed by the server')

  t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server serves on')
})

/** A connection that sends one request and reports whether an answer came before the close. */
async function holdConnection (url: string): Promise<{ socket: net.Socket, answered: Promise<boolean> }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  const answered = new Promise<boolean>(resolve => {
    socket.once('data', () => resolve(true))
    socket.once('close', () => resolve(false))
  })
  return { socket, answered }
}

t.test('connections beyond MAX_CONNECTIONS are closed unanswered; the others are served', async t => {
  const cap = 4
  const server = await startServer({ DATA_DIR: await pgliteDataDir(t), MAX_CONNECTIONS: String(cap) })
  t.teardown(async () => await server.stop())
  // one at a time, each answered or closed before the next: the count is exact
  // (fetch's idle keep-alive connection from the start-up check may hold a place)
  const held: net.Socket[] = []
  const answers: boolean[] = []
  for (let i = 0; i < cap + 3; i++) {
    const { socket, answered } = await holdConnection(server.url)
    held.push(socket)
    answers.push(await answered)
  }
  const served = answers.filter(Boolean).length
  t.ok(served >= cap - 1 && served <= cap, `at most ${cap} connections served at once (${served})`)
  t.same(answers.slice(cap), [false, false, false], 'the ones beyond the cap: closed without an answer')

  for (const socket of held) socket.destroy()
  // once the server has seen those closes, a new connection is served again
  const metrics = await pollUntil('a connection served after the others closed',
    async () => await fetch(`${server.url}/metrics`).then(async r => await r.text(), () => undefined))
  t.match(metrics, /^http_connections_dropped_total ([3-9]|\d{2,})$/m, 'counted in http_connections_dropped_total')
})
