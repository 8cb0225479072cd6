/**
 * Two instances on one database and the same Redis, each with its own
 * memories: a change of the event made on one ends what the other remembers
 * before the change is answered. A sale seen not open on B opens for B the
 * moment A's PATCH is answered; a section B saw sold out sells the seats A's
 * capacity raise added at once; a sale A closes is closed on B at once.
 */
import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { injectClient } from '../helpers/http-client.ts'
import { missing } from '../helpers/services.ts'
import { storeSetup } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()
const setup = storeSetup('postgres+redis')
const skip = await missing(...setup.needs)
if (skip !== undefined) console.log(`# SKIPPED sale changes across instances: ${skip}`)

t.test('a change of the event on one instance ends the other\'s memories before it is answered', { skip }, async t => {
  const env = await setup.env(t)
  // a minute of memory on each: a memory left in place would surely show
  const memory = { SOLD_OUT_CACHE_MS: '60000' }
  const [a, b] = [await buildApp(t, { ...env, ...memory }), await buildApp(t, { ...env, ...memory })]
  const organizerOnA = injectClient(a, as.organizer)
  const serviceOnB = injectClient(b, as.service)
  const bookOnB = async (eventId: string, sectionId: string, userId: string) =>
    await serviceOnB.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId })

  t.test('a sale not yet open opens on B when A moves salesStart', async t => {
    const { eventId, sectionId } = await createEvent(organizerOnA, [10])
    await organizerOnA.request('PATCH', `/api/events/${eventId}`, { salesStart: new Date(Date.now() + 3_600_000).toISOString() })
    // refused by batches, then remembered (the counters read before the batch that saw it)
    for (let i = 0; i < 5; i++) t.match((await bookOnB(eventId, sectionId, `early-${i}`)).body.error, { code: 'SALE_NOT_OPEN' })
    t.equal((await organizerOnA.request('PATCH', `/api/events/${eventId}`, { salesStart: null })).status, 200)
    const first = await bookOnB(eventId, sectionId, 'first')
    t.equal(first.status, 201, 'on sale on B once A\'s change is answered')
  })

  t.test('a section B saw sold out sells the seats A\'s raise added', async t => {
    const { eventId, sectionId } = await createEvent(organizerOnA, [2])
    for (let i = 0; i < 2; i++) t.equal((await bookOnB(eventId, sectionId, `buyer-${i}`)).status, 201)
    for (let i = 0; i < 5; i++) t.match((await bookOnB(eventId, sectionId, `late-${i}`)).body.error, { code: 'SOLD_OUT' })
    const raised = await organizerOnA.request('PATCH', `/api/events/${eventId}/sections/${sectionId}`, { capacity: 3 })
    t.match([raised.status, raised.body.data], [200, { capacity: 3, remaining: 1 }])
    t.equal((await bookOnB(eventId, sectionId, 'after-raise')).status, 201, 'sold on B at once')
  })

  t.test('a sale A closes is closed on B at once', async t => {
    const { eventId, sectionId } = await createEvent(organizerOnA, [10])
    t.equal((await bookOnB(eventId, sectionId, 'open')).status, 201)
    t.equal((await organizerOnA.request('POST', `/api/events/${eventId}/close`)).status, 200)
    t.match((await bookOnB(eventId, sectionId, 'closed')).body.error, { code: 'SALE_CLOSED' })
  })
})
