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
  for (const d of [2, 4]) {
    const r = await runLoad({ label: 'x', url: server.url, path: '/bookings', method: 'POST', body, connections: Number(process.argv[3] ?? 100), pipelining: 1, duration: d })
    console.log(d, r.reqPerSec.toFixed(0), r.latencyMs, r.status, r.seconds)
  }
  const m = await (await fetch(server.url + '/metrics')).text()
  console.log(m.split('\n').filter(l => /batch_size|store_transaction|lock_acquire/.test(l) && !l.startsWith('#')).join('\n'))
} finally { await stopServer(server) }
