/**
 * The entry: runs serve.ts (the process) and turns any failure before
 * listening into one line. Run by plain node: `npm start` runs the compiled
 * dist/server.js (scripts/build.mjs), `npm run dev` this file through tsx.
 *
 * Its only static import is a Node built-in: everything else (the service's
 * modules, the dependencies) is loaded by the dynamic import below, so a
 * module that fails to load (a syntax error, a missing export or file) is
 * reported like any other failed start instead of by Node's stack trace.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FailStart } from './serve.ts'

/** Where a SyntaxError of module loading points: Node puts `file:///...:line` on the first line of its stack. */
function location (err: unknown): string {
  if (!(err instanceof SyntaxError)) return ''
  const first = err.stack?.split('\n', 1)[0] ?? ''
  return /^(file:\/\/\/|\/)\S+:\d+$/.test(first) ? ` (${first.replace(/^file:\/\//, '')})` : ''
}

/**
 * A failed start is one line on stderr naming what failed (a variable and
 * why, the server that did not answer, the module that did not load), then
 * exit 1; no stack trace. What had been opened is closed first (a data
 * directory's lock, clients).
 */
const failStart: FailStart = async (err, fastify) => {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`start-up failed: ${message.replace(/\s*\n\s*/g, ' ')}${location(err)}\n`)
  if (fastify !== undefined) await Promise.race([fastify.close().catch(() => {}), sleep(5000)])
  process.exit(1)
}

try {
  const { serve } = await import('./serve.ts')
  await serve(failStart)
} catch (err) {
  // serve reports its own failures; what reaches here failed to load (or is unforeseen)
  await failStart(err)
}
