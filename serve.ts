/**
 * The process: reads .env, builds the app, listens, and shuts down gracefully
 * on SIGTERM/SIGINT. Loaded by server.ts, which reports a failed start.
 */
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import app, { appOptions } from './app.ts'
import { loadDotEnv } from './lib/support/env-file.ts'

/** Reports a failed start (one line) and ends the process, closing what had been opened. */
export type FailStart = (err: unknown, fastify?: FastifyInstance) => Promise<never>

export async function serve (failStart: FailStart): Promise<void> {
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
}
