/**
 * Text a store cannot hold, sent to a real server process on each store: a NUL
 * (U+0000, which PostgreSQL and PGlite refuse) or an unpaired UTF-16 surrogate
 * (which cannot be stored as UTF-8: it would come back as U+FFFD) in any
 * string input is refused with 400 naming the field, and changes nothing.
 * Text with paired surrogates (an emoji) is stored as sent.
 */
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { urlClient, type ApiResponse } from '../helpers/http-client.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()
const section = (name: string) => ({ name, price: 10, capacity: 5 })

/** Sends raw bytes as one HTTP request; answers the status and the parsed body. */
async function rawRequest (url: string, bytes: Buffer): Promise<{ status: number, body: any }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  socket.on('error', () => {})
  socket.end(bytes)
  await once(socket, 'close')
  const raw = Buffer.concat(chunks).toString('utf8')
  return { status: Number(raw.split(' ')[1]), body: JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) }
}

for (const setup of STORE_SETUPS) {
  t.test(`NUL and unpaired surrogates refused with 400 naming the field (${setup.name})`, { skip: await missing(...setup.needs) }, async t => {
    const server = await startServer(await setup.env(t))
    t.teardown(async () => await server.stop())
    const organizer = urlClient(server.url, { headers: as.organizer })
    const service = urlClient(server.url, { headers: as.service })

    const emoji = 'Concert \u{1F3B5} in Zürich'
    const { eventId, sectionId, event } = await createEvent(organizer, [5], { name: emoji, sectionNames: ['Parterre \u{1F600}'] })
    t.equal(event.name, emoji, 'paired surrogates (an emoji) are accepted')
    const stored = await urlClient(server.url).request('GET', `/api/events/${eventId}`)
    t.equal(stored.body.data.name, emoji, 'and read back exactly as sent')
    t.equal(stored.body.data.sections[0].name, 'Parterre \u{1F600}')
    const hold = await service.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'u1', hold: true })
    t.equal(hold.status, 201)

    const refused = (res: ApiResponse, field: string, what: string) => {
      t.equal(res.status, 400, `${what}: 400`)
      t.match(res.body, { success: false, error: { code: 'VALIDATION_ERROR', field } }, `${what}: names ${field}`)
    }
    for (const [bad, label] of [['a\u0000b', 'NUL'], ['a\uD800b', 'a lone high surrogate'], ['\uDC00', 'a lone low surrogate']]) {
      const res = await organizer.request('POST', '/api/events', { name: bad, sections: [section('A')] })
      refused(res, 'name', `${label} in an event name`)
      t.match(res.body.error?.message, /^body\.name must not contain NUL \(U\+0000\) or unpaired surrogates$/)
      refused(await organizer.request('POST', '/api/events', { name: 'ok', sections: [section('A'), section(bad)] }), 'sections.1.name', `${label} in a section name`)
      refused(await service.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: bad }), 'userId', `${label} in a userId`)
      refused(await service.request('POST', `/api/bookings/${hold.body.data._id}/confirm`, { paymentRef: bad }), 'paymentRef', `${label} in a paymentRef`)
    }
    for (const [query, field] of [['userId=%00', 'userId'], ['userId=a%00b', 'userId'], ['eventId=%00', 'eventId'], ['status=held%00', 'status']]) {
      refused(await service.request('GET', `/bookings?${query}`), field, `a NUL in the ${field} filter`)
    }

    const post = (headers: string, body: Buffer) => Buffer.concat([
      Buffer.from(`POST /bookings HTTP/1.1\r\nHost: x\r\nAuthorization: ${as.service.authorization}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`, 'latin1'),
      body
    ])
    const booking = Buffer.from(JSON.stringify({ eventId, sectionId, qty: 1, userId: 'u2' }))
    const nulKey = await rawRequest(server.url, post('Idempotency-Key: order\u00001\r\n', booking))
    t.equal(nulKey.status, 400, 'a NUL in the Idempotency-Key header: 400')
    t.match(nulKey.body, { success: false, error: { code: 'VALIDATION_ERROR', field: 'idempotency-key' } }, 'naming the header')
    const notUtf8 = await rawRequest(server.url, post('', Buffer.concat([Buffer.from('{"eventId":"'), Buffer.from([0xED, 0xA0, 0x80]), Buffer.from('"}')])))
    t.equal(notUtf8.status, 400, 'a surrogate encoded as bytes (not UTF-8) in a body: 400')
    t.match(notUtf8.body, { success: false, error: { code: 'INVALID_JSON', message: 'body is not valid UTF-8' } })

    const events = await urlClient(server.url).request('GET', '/api/events')
    t.equal(events.body.data.total, 1, 'no refused event was stored')
    const bookings = await service.request('GET', `/bookings?eventId=${eventId}`)
    t.match(bookings.body.data, { total: 1, items: [{ status: 'held' }] }, 'no refused booking was stored, the hold was not confirmed')
    t.equal((await fetch(`${server.url}/health`)).status, 200, 'the server answers on')
    t.same(server.output.filter(line => line.includes('unhandled error')), [], 'no 500 was logged')
  })
}
