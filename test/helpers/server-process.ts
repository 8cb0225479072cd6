/**
 * Real server processes for end-to-end tests and benchmarks: `server.ts` run
 * by node + tsx on 127.0.0.1 with a port chosen by the OS.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigSchema } from '../../plugins/config.ts'
import { withTestAuth } from './tokens.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ServerProcess {
  url: string
  child: ChildProcess
  /** log lines the process printed (JSON lines and anything else) */
  output: string[]
  /** SIGTERM and wait: resolves with the exit code */
  stop: () => Promise<number | null>
  /** SIGKILL, no shutdown at all */
  kill: () => Promise<void>
}

/** A port that was free a moment ago (the OS picks it). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Node's arguments for server.ts: the V8 flags test processes set for their
 * own PGlite (wasm-flags.ts), none elsewhere (a benchmark's server runs as
 * in production).
 */
function nodeArgs (): string[] {
  const flags = process.env.TEST_SERVER_NODE_FLAGS?.split(' ').filter(f => f !== '') ?? []
  return [...flags, '--import', 'tsx', 'server.ts']
}

const CONFIG_VARIABLES = new Set([...Object.keys(ConfigSchema.properties), 'ENV_FILE'])

/**
 * This process's environment without the service's configuration: a test
 * server takes its store, Redis, identity and limits from its test alone (a
 * MONGODB_URI or DATABASE_URL exported for the test suites must not turn an
 * embedded test server into a MongoDB one).
 */
export function shellEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !CONFIG_VARIABLES.has(name)))
}

/** The environment a test's server process gets: the test's, on 127.0.0.1, no .env, the test identity unless env sets AUTH_*. */
function serverEnv (env: Record<string, string>, port: number): NodeJS.ProcessEnv {
  // ENV_FILE empty: a developer's .env never reaches a test's server
  return { ...shellEnv(), ENV_FILE: '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...withTestAuth(env) }
}

export interface Exited {
  code: number | null
  stdout: string[]
  stderr: string[]
}

/** Runs server.ts expecting it to stop by itself (a failed start): its exit code and output lines. */
export async function runToExit (env: Record<string, string>, { timeoutMs = 60_000 } = {}): Promise<Exited> {
  const child = spawn(process.execPath, nodeArgs(), {
    cwd: ROOT,
    env: serverEnv(env, await freePort()),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const stdout: string[] = []
  const stderr: string[] = []
  createInterface({ input: child.stdout }).on('line', line => stdout.push(line))
  createInterface({ input: child.stderr }).on('line', line => stderr.push(line))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  // 'close': exited, and its output read to the end
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export async function startServer (env: Record<string, string>, { timeoutMs = 60_000 } = {}): Promise<ServerProcess> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, nodeArgs(), {
    cwd: ROOT,
    env: serverEnv(env, port),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  let exited = false
  child.once('exit', () => { exited = true })
  createInterface({ input: child.stdout! }).on('line', line => output.push(line))
  createInterface({ input: child.stderr! }).on('line', line => output.push(line))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited) throw new Error(`server exited with ${child.exitCode} before listening:\n${output.join('\n')}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server did not answer /health in ${timeoutMs} ms:\n${output.join('\n')}`)
    }
    try {
      if ((await fetch(`${url}/health`)).ok) break
    } catch {}
    await sleep(100)
  }
  return {
    url,
    child,
    output,
    async stop () {
      if (exited) return child.exitCode
      child.kill('SIGTERM')
      const [code] = await once(child, 'exit')
      return code as number | null
    },
    async kill () {
      if (exited) return
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  }
}
