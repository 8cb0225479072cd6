/**
 * Throwaway redis-server processes on spare ports, for lock-quorum and fault
 * tests: only the processes started here are ever stopped, never the
 * machine's shared Redis; they are killed at teardown, or when the process ends first.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { TestContext } from './context.ts'
import { onProcessExit } from './exit-hooks.ts'
import { freezeTree, signalTree } from './processes.ts'
import { freePort } from './server-process.ts'
import type { ThrowawayServer } from './throwaway-server.ts'

/** stop() is SIGTERM (no persistence: the data is gone); start() resolves once it answers PING. */
export type RedisServer = ThrowawayServer

export async function redisServerAvailable (): Promise<string | undefined> {
  const child = spawn('redis-server', ['--version'], { stdio: 'ignore' })
  const [code] = await once(child, 'exit').catch(() => [1])
  return code === 0 ? undefined : 'redis-server binary not found'
}

const running = (child: ChildProcess | undefined): child is ChildProcess =>
  child !== undefined && child.exitCode === null && child.signalCode === null

/** Resolves once the redis-server with this pid answers on port (not some other server). */
async function answering (port: number, child: ChildProcess): Promise<void> {
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {}) // refused until the server listens
  try {
    for (let i = 0; i < 100 && running(child); i++) {
      const info = await probe.connect().then(async () => await probe.info('server')).catch(() => undefined)
      if (info?.includes(`process_id:${child.pid}\r`) === true) return
      if (info !== undefined) throw new Error(`another server answers on port ${port}`)
      probe.disconnect()
      await sleep(50)
    }
    throw new Error(`redis-server on port ${port} did not start`)
  } finally {
    probe.disconnect()
  }
}

export async function throwawayRedis (t: TestContext): Promise<RedisServer> {
  const port = await freePort()
  if (port === 6379) throw new Error('refusing the shared Redis port')
  let child: ChildProcess | undefined
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (!running(child)) return
    const exited = once(child, 'exit')
    if (signal !== 'SIGKILL') server.thaw()
    child.kill(signal)
    await exited
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start () {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      await answering(port, child)
    },
    stop: async () => { await end('SIGTERM') },
    kill: async () => { await end('SIGKILL') },
    freeze: async () => { if (running(child)) await freezeTree(child.pid!) },
    thaw: () => { if (running(child)) signalTree(child.pid!, 'SIGCONT') },
    pid: () => running(child) ? child.pid : undefined
  }
  const offExit = onProcessExit(() => { if (running(child)) child.kill('SIGKILL') })
  t.teardown(async () => {
    offExit()
    await server.kill()
  })
  await server.start()
  return server
}
