/**
 * Several `npm start` at once in one checkout (a process manager, a systemd
 * template, a compose file running `npm start`), against PostgreSQL + Redis:
 * dist/ is compiled by one of them, and only when missing or stale; the others
 * wait and run the same whole build, so every instance comes up. A module that
 * fails to load and a build that fails are each one line on stderr and exit 1;
 * a failed build leaves the last good one in place, and the lock of a build
 * that was killed does not block the next.
 *
 * In a copy of the checkout (its node_modules linked): the checkout's own
 * dist/ is left alone, whatever else runs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createPgDatabase, newTempDir } from '../helpers/databases.ts'
import { onProcessExit } from '../helpers/exit-hooks.ts'
import { pollUntil } from '../helpers/poll.ts'
import { signalTree } from '../helpers/processes.ts'
import { freePort, shellEnv } from '../helpers/server-process.ts'
import { withTestAuth } from '../helpers/tokens.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const INSTANCES = 3

/** A copy of what the build reads (tsconfig.build.json's include, the configs, the build script) and package.json. */
function copyCheckout (): string {
  const dir = newTempDir('booking-start-race-')
  const { include } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { include: string[] }
  for (const path of [...include, 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/build.mjs']) {
    cpSync(join(ROOT, path), join(dir, path), { recursive: true })
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  return dir
}

interface Run {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  /** exit code, once exited and its output read to the end */
  closed: Promise<number | null>
}

function run (cwd: string, command: string, args: string[], env: Record<string, string>): Run {
  // npm_*: npm test's own variables would tell this npm it runs inside a script;
  // NODE_OPTIONS: the test runner's hooks, not in an operator's start
  const inherited = Object.fromEntries(Object.entries(shellEnv()).filter(([name]) => !name.startsWith('npm_') && name !== 'NODE_OPTIONS'))
  const child = spawn(command, args, { cwd, env: { ...inherited, ENV_FILE: '', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...withTestAuth(env) }, stdio: ['ignore', 'pipe', 'pipe'] })
  const stdout: string[] = []
  const stderr: string[] = []
  createInterface({ input: child.stdout! }).on('line', line => stdout.push(line))
  createInterface({ input: child.stderr! }).on('line', line => stderr.push(line))
  const unregister = onProcessExit(() => signalTree(child.pid!, 'SIGKILL'))
  const closed = once(child, 'close').then(([code]) => { unregister(); return code as number | null })
  return { child, stdout, stderr, closed }
}

const compiled = (runs: Run[]): number => runs.filter(r => r.stdout.some(line => line.startsWith('build: compiling'))).length

// one copy for both tests: the second starts from the first's build
const dir = copyCheckout()
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('three `npm start` at once, three rounds: every instance comes up on one whole build, compiled once when stale', async t => {
  const db = await createPgDatabase('booking_start_race')
  t.teardown(db.drop)
  const env = { DATABASE_URL: db.url, REDIS_NODES: 'redis://127.0.0.1:6379' }

  const rounds: Array<{ name: string, before?: () => void, compiles: number }> = [
    { name: 'from no dist/', compiles: 1 },
    { name: 'dist/ up to date', compiles: 0 },
    // a changed source: compiled again, and swapped in for the build that ran until now
    { name: 'a source changed', before: () => appendFileSync(join(dir, 'routes/health.ts'), '// changed\n'), compiles: 1 }
  ]
  const builds: string[] = []
  for (const round of rounds) {
    await t.test(round.name, async t => {
      round.before?.()
      const ports = await Promise.all(Array.from({ length: INSTANCES }, freePort))
      const runs = ports.map(port => run(dir, 'npm', ['start'], { ...env, PORT: String(port) }))
      t.teardown(() => { for (const r of runs) signalTree(r.child.pid!, 'SIGKILL') })
      await Promise.all(runs.map(async (r, i) => {
        let exited = false
        void r.closed.then(() => { exited = true })
        // a generous deadline: the build comes first
        await pollUntil(`instance ${i} answering /health`, async () => {
          if (exited) throw new Error(`instance ${i} exited before listening: ${[...r.stdout, ...r.stderr].join('\n')}`)
          return await fetch(`http://127.0.0.1:${ports[i]}/health`).then(res => res.ok ? true : undefined, () => undefined)
        }, { timeoutMs: 240_000, everyMs: 100 })
      }))
      t.pass(`all ${INSTANCES} instances answer /health`)
      t.equal(compiled(runs), round.compiles, round.compiles === 0 ? 'none compiled' : 'one compiled, the others waited for it', { output: runs.map(r => r.stdout) })
      for (const r of runs) r.child.kill('SIGTERM')
      const codes = await Promise.all(runs.map(async r => await r.closed))
      t.same(codes, Array(INSTANCES).fill(0), 'SIGTERM: each exits 0', { stderr: runs.map(r => r.stderr) })
      t.same(runs.flatMap(r => r.stderr), [], 'nothing on stderr')
      builds.push(readlinkSync(join(dir, 'dist')))
    })
  }
  t.equal(builds[1], builds[0], 'an up-to-date dist/ is run as it is')
  t.not(builds[2], builds[1], 'a changed source: a new build')
  t.same(readdirSync(join(dir, '.builds')).sort(), [builds[1], builds[2]].map(b => b.replace(/^\.builds\//, '')).sort(),
    'the current build and the previous one are kept, nothing else (no lock, no partial build)')
})

t.test('a module that fails to load, a build that fails: one line on stderr, exit 1', async t => {
  // up to date after the rounds above: nothing to compile
  const build = run(dir, 'npm', ['run', 'build'], {})
  t.equal(await build.closed, 0, 'npm run build', { output: [...build.stdout, ...build.stderr] })
  const built = readlinkSync(join(dir, 'dist'))

  // the compiled files as a half-written or mismatched build would leave them; run as the Docker image runs them
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['plugins/rate-limit.js', 'export const rateLimit = 1\n', /^start-up failed: The requested module '\.\/plugins\/rate-limit\.js' does not provide an export named 'default' \(\S+\/app\.[jt]s:\d+\)$/],
    ['routes/health.js', 'export default function (\n', /^start-up failed: Unexpected end of input$/],
    ['routes/metrics.js', undefined, /^start-up failed: Cannot find module '\S+\/routes\/metrics\.js' imported from \S+\/app\.js$/]
  ]
  for (const [file, content, pattern] of cases) {
    await t.test(file, async t => {
      const path = join(dir, 'dist', file)
      const original = readFileSync(path)
      if (content === undefined) rmSync(path)
      else writeFileSync(path, content)
      t.teardown(() => writeFileSync(path, original))
      const r = run(dir, process.execPath, ['dist/server.js'], { PORT: String(await freePort()) })
      t.equal(await r.closed, 1, 'exit 1')
      t.equal(r.stderr.length, 1, 'one line on stderr', { stderr: r.stderr })
      t.match(r.stderr[0], pattern)
      t.same(r.stdout, [], 'nothing on stdout')
    })
  }

  await t.test('npm start when tsc fails, after a build that was killed', async t => {
    const before = readdirSync(join(dir, '.builds')).sort()
    const gone = run(dir, process.execPath, ['-e', ''], {})
    await gone.closed
    writeFileSync(join(dir, '.builds/lock'), `${gone.child.pid}\n`)
    // a build configuration naming a folder without sources: tsc fails at once (any error takes the same path)
    mkdirSync(join(dir, 'empty'))
    const config = join(dir, 'tsconfig.build.json')
    writeFileSync(config, readFileSync(config, 'utf8').replace(/"include": \[.*\]/, '"include": ["empty"]'))
    const r = run(dir, 'npm', ['start'], { PORT: String(await freePort()), DATA_DIR: join(dir, 'data') })
    t.equal(await r.closed, 1, 'exit 1')
    t.ok(r.stdout.includes(`build: taking over the build lock left by pid ${gone.child.pid}`), 'the lock of a process that is gone is taken over', { stdout: r.stdout })
    t.equal(r.stderr.length, 1, 'one line on stderr', { stderr: r.stderr })
    t.match(r.stderr[0], /^start-up failed: dist\/ could not be built: error TS18003: No inputs were found in config file /)
    t.notMatch(r.stdout.join('\n'), /^\s+at /m, 'no stack trace')
    t.equal(readlinkSync(join(dir, 'dist')), built, 'dist/ is still the last good build')
    t.notOk(existsSync(join(dir, '.builds/lock')), 'the lock is released')
    t.same(readdirSync(join(dir, '.builds')).sort(), before, 'the failed build is not left behind')
  })
})
