/**
 * Starting the process as an operator does. A failed start is one line on
 * stderr naming what failed (the variable, or the server that did not
 * answer, by host:port) and exit code 1: no stack trace, no words meant for
 * HTTP clients, no credentials. `.env` in the working directory is read, and
 * the real environment wins over it.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { newTempDir, tempDataDir } from '../helpers/databases.ts'
import { onProcessExit } from '../helpers/exit-hooks.ts'
import { pollUntil } from '../helpers/poll.ts'
import { freePort, runToExit, shellEnv, type Exited } from '../helpers/server-process.ts'

const SERVER = fileURLToPath(new URL('../../server.ts', import.meta.url))

function checkOneLine (t: Test, run: Exited, pattern: RegExp): void {
  t.equal(run.code, 1, 'exit code 1')
  t.equal(run.stderr.length, 1, 'one line on stderr', { stderr: run.stderr })
  t.match(run.stderr[0], pattern, run.stderr[0])
  t.notMatch([...run.stdout, ...run.stderr].join('\n'), /^\s+at /m, 'no stack trace')
}

t.test('a bad variable: one line naming it', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^start-up failed: .*PORT must be integer/],
    [{ DATABASE_URL: 'mysql://db' }, /^start-up failed: .*DATABASE_URL must match/],
    [{ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '5000' }, /^start-up failed: HEADERS_TIMEOUT_MS \(5000\) must not exceed REQUEST_TIMEOUT_MS \(1000\)$/],
    [{ LOCK_WAIT_MS: '5000', CONNECTION_TIMEOUT_MS: '3000' }, /^start-up failed: CONNECTION_TIMEOUT_MS \(3000\) must be 0 \(none\) or longer than LOCK_WAIT_MS \+ 1000/]
  ]
  for (const [env, pattern] of cases) {
    t.test(Object.keys(env).join(', '), async t => checkOneLine(t, await runToExit({ DATA_DIR: tempDataDir(t), ...env }), pattern))
  }
})

t.test('an unreachable DATABASE_URL: one line with its host:port, no credentials', async t => {
  const port = await freePort() // nothing listens there
  const run = await runToExit({ DATABASE_URL: `postgres://booker:s3cret@127.0.0.1:${port}/tickets` })
  checkOneLine(t, run, new RegExp(`^start-up failed: PostgreSQL at 127\\.0\\.0\\.1:${port} did not answer: ECONNREFUSED$`))
  t.notMatch(run.stderr[0], /s3cret|retry later|temporarily/i, 'neither the password nor words meant for HTTP clients')
})

t.test('unreachable REDIS_NODES: one line with each host:port that did not answer', async t => {
  const [a, b] = [await freePort(), await freePort()]
  const run = await runToExit({ DATA_DIR: tempDataDir(t), REDIS_NODES: `redis://127.0.0.1:${a},redis://127.0.0.1:${b}` })
  checkOneLine(t, run, new RegExp(`^start-up failed: REDIS_NODES: only 0 of 2 Redis node\\(s\\) reachable, the lock needs 2: Redis at 127\\.0\\.0\\.1:${a} did not answer: ECONNREFUSED; Redis at 127\\.0\\.0\\.1:${b} did not answer: ECONNREFUSED$`))
})

t.test('an ENV_FILE that is not there: one line naming it', async t => {
  const missing = join(tempDataDir(t), 'nope.env')
  checkOneLine(t, await runToExit({ ENV_FILE: missing }), new RegExp(`^start-up failed: env file ${missing} could not be read: ENOENT$`))
})

/** server.ts started in `cwd` (where its .env is), as `npm start` does from the project directory. */
function startIn (cwd: string, env: Record<string, string>) {
  // tsx by its path: cwd is not the project, so the bare name would not resolve
  const tsx = import.meta.resolve('tsx')
  const child = spawn(process.execPath, ['--import', tsx, SERVER], { cwd, env: { ...shellEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  child.stdout.on('data', (d: Buffer) => output.push(d.toString()))
  child.stderr.on('data', (d: Buffer) => output.push(d.toString()))
  const unregister = onProcessExit(() => child.kill('SIGKILL'))
  child.once('exit', unregister)
  return { child, output }
}

t.test('.env in the working directory is read; the real environment wins', async t => {
  const dir = newTempDir('booking-envfile-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir)
  const [filePort, realPort] = [await freePort(), await freePort()]
  writeFileSync(join(dir, '.env'), [
    '# as copied from .env.example and edited',
    `PORT=${filePort}`,
    'HOST=127.0.0.1',
    `DATA_DIR=${dataDir}`,
    'AUTH_DISABLED=true',
    'LOG_LEVEL=warn',
    ''
  ].join('\n'))
  const { child, output } = startIn(dir, { PORT: String(realPort) })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  await pollUntil(`/health on the environment's PORT (output: ${output.join('')})`,
    async () => await fetch(`http://127.0.0.1:${realPort}/health`).then(r => r.ok ? true : undefined, () => undefined), { timeoutMs: 60_000 })
  t.pass('listening on the PORT of the environment, not of the file')
  await t.rejects(fetch(`http://127.0.0.1:${filePort}/health`), 'nothing on the PORT of the file')
  t.ok(existsSync(join(dataDir, 'service.lock')), 'the embedded store under the DATA_DIR of the file')
  const created = await fetch(`http://127.0.0.1:${realPort}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'From .env', sections: [{ name: 'A', price: 1, capacity: 1 }] })
  })
  t.equal(created.status, 201, 'AUTH_DISABLED=true of the file: no token needed')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'SIGTERM: exit 0')
})
