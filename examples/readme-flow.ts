/**
 * The README flow through a typed client: openapi-fetch over the types
 * openapi-typescript generated from /docs/json (types/openapi.d.ts). Every
 * request and answer is checked by the compiler against the document, with
 * no casts. The suite runs it against a listening server; by hand:
 *
 *   ALICE=$(npm run -s token -- --role organizer --sub alice) BOB=$(npm run -s token -- --sub bob) \
 *     npx tsx examples/readme-flow.ts http://localhost:3000
 */
import { fileURLToPath } from 'node:url'
import createClient from 'openapi-fetch'
import type { paths } from '../types/openapi.d.ts'

export interface FlowTokens {
  /** an organizer's bearer token: creates the event */
  organizer: string
  /** a customer's: books as itself */
  customer: string
}

/** What each step answered. */
export interface FlowReport {
  created: { status: number, location: string | null, eventId: string, sections: string[] }
  booked: { status: number, location: string | null, bookingId: string, bookingStatus: string }
  retried: { status: number, replayed: string | null, bookingId: string }
  soldOut: { status: number, code: string, remaining: number | undefined }
  listed: { status: number, total: number, bookingIds: string[] }
  held: { status: number, bookingId: string, bookingStatus: string, expiresAt: string | undefined }
  confirmed: { status: number, bookingStatus: string, paymentRef: string | undefined }
  cancelled: { status: number, bookingStatus: string }
  /** each section's remaining seats at the end, by name */
  remaining: Record<string, number>
}

/** The data of a success, or an error naming the step and what the server answered. */
function need<T> (step: string, answer: { data?: T, error?: unknown, response: Response }): T {
  if (answer.data === undefined) throw new Error(`${step}: ${answer.response.status} ${JSON.stringify(answer.error)}`)
  return answer.data
}

export async function readmeFlow (baseUrl: string, tokens: FlowTokens): Promise<FlowReport> {
  const anyone = createClient<paths>({ baseUrl })
  const organizer = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${tokens.organizer}` } })
  const customer = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${tokens.customer}` } })

  // an organizer creates an event: two seats in VIP, ten on the floor
  const createAnswer = await organizer.POST('/api/events', {
    body: { name: 'Concert', holdSeconds: 600, sections: [{ name: 'VIP', price: 150, capacity: 2 }, { name: 'Floor', price: 40, capacity: 10 }] }
  })
  const event = need('create event', createAnswer).data
  const [vip, floor] = event.sections

  // the customer books both VIP seats, with a retry key; the retry answers the same booking
  const order = { eventId: event._id, sectionId: vip._id, qty: 2 }
  const bookAnswer = await customer.POST('/bookings', { params: { header: { 'idempotency-key': 'order-42' } }, body: order })
  const booking = need('book', bookAnswer).data
  const retryAnswer = await customer.POST('/bookings', { params: { header: { 'idempotency-key': 'order-42' } }, body: order })
  const retried = need('retry', retryAnswer).data

  // VIP is sold out now: 409 with what remains
  const soldOutAnswer = await customer.POST('/bookings', { body: { eventId: event._id, sectionId: vip._id, qty: 1 } })
  if (soldOutAnswer.error === undefined) throw new Error(`sold out: answered ${soldOutAnswer.response.status}`)

  // the customer's bookings of the event: eventId alone, no page or limit
  const listAnswer = await customer.GET('/bookings', { params: { query: { eventId: event._id } } })
  const list = need('list', listAnswer).data

  // a hold on the floor, confirmed with the payment's reference
  const holdAnswer = await customer.POST('/api/bookings', { body: { eventId: event._id, sectionId: floor._id, qty: 3, hold: true } })
  const hold = need('hold', holdAnswer).data
  const confirmAnswer = await customer.POST('/api/bookings/{id}/confirm', { params: { path: { id: hold._id } }, body: { paymentRef: 'pay-42' } })
  const confirmed = need('confirm', confirmAnswer).data

  // the VIP booking cancelled: its seats go back at once
  const cancelAnswer = await customer.POST('/api/bookings/{id}/cancel', { params: { path: { id: booking._id } } })
  const cancelled = need('cancel', cancelAnswer).data

  // availability, as anyone sees it
  const after = need('event', await anyone.GET('/api/events/{id}', { params: { path: { id: event._id } } })).data

  return {
    created: { status: createAnswer.response.status, location: createAnswer.response.headers.get('location'), eventId: event._id, sections: event.sections.map(s => s._id) },
    booked: { status: bookAnswer.response.status, location: bookAnswer.response.headers.get('location'), bookingId: booking._id, bookingStatus: booking.status },
    retried: { status: retryAnswer.response.status, replayed: retryAnswer.response.headers.get('idempotent-replayed'), bookingId: retried._id },
    soldOut: { status: soldOutAnswer.response.status, code: soldOutAnswer.error.error.code, remaining: soldOutAnswer.error.error.remaining },
    listed: { status: listAnswer.response.status, total: list.total, bookingIds: list.items.map(b => b._id) },
    held: { status: holdAnswer.response.status, bookingId: hold._id, bookingStatus: hold.status, expiresAt: hold.expiresAt },
    confirmed: { status: confirmAnswer.response.status, bookingStatus: confirmed.status, paymentRef: confirmed.paymentRef },
    cancelled: { status: cancelAnswer.response.status, bookingStatus: cancelled.status },
    remaining: Object.fromEntries(after.sections.map(s => [s.name, s.remaining]))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { ALICE, BOB } = process.env
  if (ALICE === undefined || BOB === undefined) throw new Error('set ALICE (an organizer\'s token) and BOB (a customer\'s): see the comment at the top')
  console.log(JSON.stringify(await readmeFlow(process.argv[2] ?? 'http://localhost:3000', { organizer: ALICE, customer: BOB }), null, 2))
}
