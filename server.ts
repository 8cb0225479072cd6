/** The process: builds the app, listens, and shuts down gracefully on SIGTERM/SIGINT. */
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app, { appOptions } from './app.ts'

const fastify = Fastify(appOptions())
try {
  // fp: the app's decorators (config, store, ...) belong to the root instance
  await fastify.register(fp(app))
  await fastify.ready()
} catch (err) {
  fastify.log.fatal({ err }, 'start-up failed')
  console.error(`start-up failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}

// On a signal: stop accepting, let in-flight requests and queued bookings finish, close store and Redis, exit 0.
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err !== undefined) fastify.log.error({ err }, 'shutting down after an uncaught error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
})

await fastify.listen({ port: fastify.config.PORT, host: fastify.config.HOST })
