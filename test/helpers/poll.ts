/** Waiting for something a server does on its own (an expiry, a take-over), with a generous deadline instead of a sleep. */
import { setTimeout as sleep } from 'node:timers/promises'

export interface PollOptions {
  /** pause between calls */
  everyMs?: number
  /** then it throws: a deadline for a hang, not a performance threshold */
  timeoutMs?: number
}

/** Calls fn until it returns something other than undefined; throws naming `what` after timeoutMs. */
export async function pollUntil<T> (what: string, fn: () => Promise<T | undefined>, { everyMs = 50, timeoutMs = 30_000 }: PollOptions = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeoutMs} ms for ${what}`)
    await sleep(everyMs)
  }
}
