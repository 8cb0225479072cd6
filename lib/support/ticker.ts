/**
 * A background loop: `tick` runs every `everyMs`, the next one scheduled only
 * once the last has ended (ticks never overlap), on an unref'd timer (the loop
 * never keeps the process alive). `tick` must not throw.
 */
export interface Ticker {
  start: () => void
  /** Stops ticking; resolves once a tick under way has ended. */
  stop: () => Promise<void>
}

export function createTicker (everyMs: number, tick: () => Promise<void>): Ticker {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let stopped = true

  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      running = tick().finally(schedule)
    }, everyMs)
    timer.unref()
  }

  return {
    start (): void {
      if (!stopped) return
      stopped = false
      schedule()
    },
    async stop (): Promise<void> {
      stopped = true
      clearTimeout(timer)
      await running
    }
  }
}
