/** What fault suites can do to a server a helper started for them (redis-server.ts, pg-cluster.ts). */
export interface ThrowawayServer {
  /** a spare port, never the shared server's */
  port: number
  url: string
  /** starts it (again) on the same port and data; resolves once it answers */
  start: () => Promise<void>
  /** a clean shutdown */
  stop: () => Promise<void>
  /** SIGKILL to the server and its children: a crash, not a shutdown */
  kill: () => Promise<void>
  /** SIGSTOP, resolved once every process of it has stopped: a server that stops answering (connections stay open) */
  freeze: () => Promise<void>
  /** SIGCONT: it answers again */
  thaw: () => void
  /** the server's pid while it runs */
  pid: () => number | undefined
}
