import { runLoad } from './load.ts'
import { createEvent, bookingBody } from './server.ts'
const url = process.argv[2]
const ev = await createEvent(url, 'p', [1_000_000])
const body = bookingBody(ev.eventId, ev.sections[0]._id, 'u')
const r = await runLoad({ label: 'x', url, path: '/bookings', method: 'POST', body, connections: Number(process.argv[3] ?? 100), pipelining: 1, duration: Number(process.argv[4] ?? 4) })
console.log(r.reqPerSec.toFixed(0), r.latencyMs, r.status)
