/**
 * The process: reads .env, builds the app, listens, and shuts down gracefully
 * on SIGTERM/SIGINT. Run by plain node: `npm start` runs the compiled
 * dist/server.js (`npm run build`), `npm run dev` this file through tsx.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import app, { appOptions } from './app.ts'
import { loadDotEnv } from './lib/support/env-file.ts'

/**
 * A failed start is one line on stderr naming what failed (a variable and
 * why, or the server that did not answer), then exit 1; no stack trace.
 * What had been opened is closed first (a data directory's lock, clients).
 */
async function failStart (err: unknown, fastify?: FastifyInstance): Promise<never> {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`start-up failed: ${message.replace(/\s*\n\s*/g, ' ')}\n`)
  if (fastify !== undefined) await Promise.race([fastify.close().catch(() => {}), sleep(5000)])
  process.exit(1)
}

try {
  loadDotEnv()
} catch (err) {
  await failStart(err)
}

const fastify = Fastify(appOptions())
try {
  // fp: the app's decorators (config, store, ...) belong to the root instance
  await fastify.register(fp(app))
  await fastify.ready()
} catch (err) {
  await failStart(err, fastify)
}

// On a signal: stop accepting, let in-flight requests and queued bookings finish, close store and Redis, exit 0.
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err !== undefined) fastify.log.error({ err }, 'shutting down after an uncaught error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
})

try {
  await fastify.listen({ port: fastify.config.PORT, host: fastify.config.HOST })
} catch (err) {
  await failStart(err, fastify)
}
