import { runLoad } from './load.ts'
import { createEvent, bookingBody, api } from './server.ts'
const url = process.argv[2]
const ev = await createEvent(url, 'p', [1])
const body = bookingBody(ev.eventId, ev.sections[0]._id, 'u')
console.log((await api(url, 'POST', '/bookings', JSON.parse(body))).status)
const h = await runLoad({ label: 'x', url, path: '/health', method: 'GET', connections: 100, pipelining: 1, duration: 3 })
console.log('health', h.reqPerSec.toFixed(0))
const r = await runLoad({ label: 'x', url, path: '/bookings', method: 'POST', body, connections: 100, pipelining: 1, duration: 3 })
console.log('soldout', r.reqPerSec.toFixed(0), r.latencyMs, r.status)
