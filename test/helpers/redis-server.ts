/**
 * Throwaway redis-server processes on spare ports, for lock-quorum and fault
 * tests: the machine's shared Redis is never stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { freePort } from './server-process.ts'

export interface RedisServer {
  port: number
  url: string
  /** starts it (again) on the same port; resolves once it answers PING */
  start: () => Promise<void>
  /** SIGKILL: a crash, not a shutdown */
  kill: () => Promise<void>
}

export async function redisServerAvailable (): Promise<string | undefined> {
  const child = spawn('redis-server', ['--version'], { stdio: 'ignore' })
  const [code] = await once(child, 'exit').catch(() => [1])
  return code === 0 ? undefined : 'redis-server binary not found'
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function throwawayRedis (t: Teardown): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start () {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      try {
        for (let i = 0; i < 100; i++) {
          try {
            await probe.connect()
            await probe.ping()
            return
          } catch {
            probe.disconnect()
            await sleep(50)
          }
        }
        throw new Error(`redis-server on port ${port} did not start`)
      } finally {
        probe.disconnect()
      }
    },
    async kill () {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  }
  t.teardown(async () => await server.kill())
  await server.start()
  return server
}
