/**
 * A client generated from the OpenAPI document (openapi-fetch over
 * types/openapi.d.ts, examples/readme-flow.ts) runs the README flow against a
 * listening server, over real HTTP: create an event, book with a retry key,
 * sold out, the list by eventId alone, hold, confirm, cancel.
 */
import t from 'tap'
import { readmeFlow } from '../../examples/readme-flow.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { listeningApp } from '../helpers/listening-app.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { urlClient } from '../helpers/http-client.ts'
import { roleToken, roleHeaders } from '../helpers/tokens.ts'

t.test('the README flow through the typed client', async t => {
  const { url } = await listeningApp(t, { DATA_DIR: await pgliteDataDir(t) })
  const report = await readmeFlow(url, { organizer: await roleToken('organizer', 'alice'), customer: await roleToken('customer', 'bob') })
  const { eventId, sections: [vip] } = report.created
  t.match(report.created, { status: 201, location: `/api/events/${eventId}` })
  t.match(report.booked, { status: 201, location: `/api/bookings/${report.booked.bookingId}`, bookingStatus: 'confirmed' })
  t.same(report.retried, { status: 201, replayed: 'true', bookingId: report.booked.bookingId }, 'the retry answers the original booking')
  t.same(report.soldOut, { status: 409, code: 'SOLD_OUT', remaining: 0 })
  t.same(report.listed, { status: 200, total: 1, bookingIds: [report.booked.bookingId] }, 'listed with eventId alone')
  t.match(report.held, { status: 201, bookingStatus: 'held', expiresAt: String })
  t.same(report.confirmed, { status: 200, bookingStatus: 'confirmed', paymentRef: 'pay-42' })
  t.same(report.cancelled, { status: 200, bookingStatus: 'cancelled' })
  t.same(report.remaining, { VIP: 2, Floor: 7 }, 'the cancelled VIP seats are back; the floor sold 3')
  t.ok(vip)
  const check = await checkViaApi(urlClient(url, { headers: await roleHeaders('admin') }), eventId)
  t.same(check.problems, [], 'the invariant holds')
})
