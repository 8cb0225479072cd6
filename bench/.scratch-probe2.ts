import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLoad } from './load.ts'
import { createEvent, bookingBody, stopServer } from './server.ts'
import { startServer } from '../test/helpers/server-process.ts'
for (const v of ['STORE','DATABASE_URL','REDIS_NODES','BATCH_MAX']) delete process.env[v]
const extra = JSON.parse(process.argv[2] ?? '{}')
const dir = mkdtempSync(join(tmpdir(), 'probe-'))
const server = await startServer({ STORE: 'embedded', DATA_DIR: dir, LOG_LEVEL: 'warn', ...extra })
try {
  const ev = await createEvent(server.url, 'p', [1_000_000])
  const body = bookingBody(ev.eventId, ev.sections[0]._id, 'u')
  const iv = setInterval(async () => {
    const t0 = performance.now()
    const m = await (await fetch(server.url + '/metrics')).text()
    console.log('metrics fetch ms', (performance.now() - t0).toFixed(0), m.split('\n').filter(l => /queue_depth|event_loop_lag_seconds |nodejs_eventloop_lag_p99/.test(l) && !l.startsWith('#')).join(' ; '))
  }, 1000)
  const r = await runLoad({ label: 'x', url: server.url, path: '/bookings', method: 'POST', body, connections: 100, pipelining: 1, duration: 4 })
  clearInterval(iv)
  console.log(r.reqPerSec.toFixed(0), r.latencyMs, r.status)
} finally { await stopServer(server) }
