/**
 * Builds dist/, the compiled service that `npm start` and the Docker image run
 * with plain node. Plain JavaScript: it runs before anything is compiled.
 *
 *   node scripts/build.mjs           `npm run build`: compiler errors in full
 *   node scripts/build.mjs --start   `npm start`: a failure is one line on stderr
 *
 * Only a missing or stale dist/ is compiled: a hash of the compiled sources,
 * the tsconfig files, this script and the TypeScript version is kept in
 * dist/.build.json. Several processes may run this at once (three `npm start`
 * in one checkout), so:
 * - one compiles, under a lock file (.builds/lock, made with O_EXCL, holding
 *   its pid); the others wait, then find dist/ fresh. A lock whose pid is gone,
 *   or older than any build takes, is taken over;
 * - a build is written to a folder of its own, .builds/<time>-<pid>, and made
 *   visible by one rename(2) of the symlink dist -> .builds/<folder>, so dist/
 *   is always one whole build, and a process runs the build it started from
 *   (node resolves the symlink once). The previous build is kept for the
 *   processes still loading it; older ones are removed.
 * The lock only saves work: were two builds to run at once (a take-over
 * race), each would still appear whole, by its one rename; no build is
 * removed while the process that made it runs.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join, relative, sep } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')
const BUILDS = join(ROOT, '.builds')
const LOCK = join(BUILDS, 'lock')
const STAMP = '.build.json'
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json']
/** A lock this old is left over (a build takes seconds; its pid may since have been reused). */
const STALE_LOCK_MS = 10 * 60_000
const PROGRESS_EVERY_MS = 5_000

const START = process.argv.includes('--start')

class BuildError extends Error {}

const say = (line) => process.stdout.write(`build: ${line}\n`)

function typescript () {
  try {
    const manifest = createRequire(import.meta.url).resolve('typescript/package.json')
    return { version: JSON.parse(readFileSync(manifest, 'utf8')).version, tsc: join(dirname(manifest), 'bin', 'tsc') }
  } catch {
    return undefined // a production install (--omit=dev): only a built dist/ can run
  }
}

/** The .ts files tsconfig.build.json's include names (files, and folders walked). */
function includedSources () {
  // its comments are whole lines (JSON with comments, as tsc reads it)
  const { include } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, ''))
  const files = []
  for (const entry of include) {
    const path = join(ROOT, entry)
    if (!statSync(path).isDirectory()) files.push(entry)
    else {
      for (const file of readdirSync(path, { recursive: true })) {
        if (/\.[cm]?tsx?$/.test(file) && !file.split(sep).includes('node_modules')) files.push(join(entry, file))
      }
    }
  }
  return files
}

/** Hash of what the build reads; contents are remembered, so a stamp names the contents compiled, not later edits. */
function fingerprint (sources, contents = new Map()) {
  const hash = createHash('sha256')
  for (const file of [...new Set([...CONFIGS, relative(ROOT, fileURLToPath(import.meta.url)), ...sources])].sort()) {
    if (!contents.has(file)) {
      try { contents.set(file, readFileSync(join(ROOT, file))) } catch { contents.set(file, null) }
    }
    const content = contents.get(file)
    hash.update(`${file}\0${content === null ? '-' : content.length}\0`)
    if (content !== null) hash.update(content)
  }
  return hash.digest('hex')
}

function readStamp () {
  try {
    return JSON.parse(readFileSync(join(DIST, STAMP), 'utf8'))
  } catch {
    return undefined // no dist/, or an incomplete or older kind of build
  }
}

/** dist/ is a build of the current sources (and of the installed TypeScript, when there is one). */
function fresh (ts) {
  const stamp = readStamp()
  if (stamp === undefined || !Array.isArray(stamp.inputs)) return false
  // files compiled last time though not under include (imported from elsewhere) count too
  return fingerprint([...includedSources(), ...stamp.inputs]) === stamp.hash && (ts === undefined || ts.version === stamp.typescript)
}

function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

function tryLock () {
  try {
    writeFileSync(LOCK, `${process.pid}\n`, { flag: 'wx' })
    return true
  } catch (err) {
    if (err.code === 'EEXIST') return false
    throw err
  }
}

/** The lock's holder: its pid (NaN while it is being written) and the lock's age; undefined when there is no lock. */
function lockHolder (path = LOCK) {
  try {
    const content = readFileSync(path, 'utf8')
    return { content, pid: Number.parseInt(content, 10), ageMs: Date.now() - statSync(path).mtimeMs }
  } catch {
    return undefined
  }
}

/**
 * Removes the lock `left` (as lockHolder read it), and only that one: it is
 * moved aside first, and a lock that turns out to be another's, made since by
 * a process that took it over too, is put back.
 */
function takeOver (left) {
  const aside = `${LOCK}.${process.pid}`
  try {
    renameSync(LOCK, aside)
  } catch {
    return // gone already
  }
  if (lockHolder(aside)?.content !== left.content) {
    try { linkSync(aside, LOCK) } catch {} // unless a newer lock is there meanwhile: then both build, each whole
  }
  rmSync(aside, { force: true })
}

function unlock () {
  // not a lock another process took over meanwhile
  if (lockHolder()?.pid === process.pid) rmSync(LOCK, { force: true })
}

/** The running tsc, for a signal to stop. */
let compiler

/** Runs tsc; resolves with its exit code and output lines. */
async function compile (tsc, outDir) {
  compiler = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir, '--listFiles', '--pretty', 'false'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  compiler.stdout.on('data', d => { output += d })
  compiler.stderr.on('data', d => { output += d })
  const code = await new Promise((resolve, reject) => compiler.once('error', reject).once('close', resolve))
  compiler = undefined
  return { code, lines: output.split('\n').filter(Boolean) }
}

async function build (ts) {
  const name = `${Date.now()}-${process.pid}`
  const outDir = join(BUILDS, name)
  const contents = new Map()
  fingerprint(includedSources(), contents) // the sources' contents as compiled from here on
  const started = Date.now()
  say(`compiling dist/ (TypeScript ${ts.version})`)
  const { code, lines } = await compile(ts.tsc, outDir)
  // --listFiles: absolute paths of every file read; the project's own are this build's inputs
  const listed = lines.filter(line => line.startsWith(ROOT) && existsSync(line))
  const diagnostics = lines.filter(line => !listed.includes(line))
  if (code !== 0) {
    rmSync(outDir, { recursive: true, force: true })
    if (!START) process.stdout.write(diagnostics.map(line => `${line}\n`).join(''))
    const errors = diagnostics.filter(line => /error TS\d+/.test(line))
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more${START ? '; `npm run build` shows them all' : ''})` : ''
    throw new BuildError(`${errors[0] ?? diagnostics[0] ?? `tsc exited with ${code}`}${more}`)
  }
  const inputs = listed.map(file => relative(ROOT, file)).filter(file => !file.split(sep).includes('node_modules')).sort()
  const hash = fingerprint([...includedSources(), ...inputs], contents)
  writeFileSync(join(outDir, STAMP), `${JSON.stringify({ hash, typescript: ts.version, inputs }, null, 2)}\n`)
  publish(name)
  say(`dist/ ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

/** Points dist at .builds/<name> with one rename(2), then removes the builds no longer needed. */
function publish (name) {
  let previous
  try {
    if (lstatSync(DIST).isSymbolicLink()) previous = basename(readlinkSync(DIST))
    // dist/ as a plain folder (a build of another kind): moved aside once, removed below
    else renameSync(DIST, join(BUILDS, `${Date.now()}-0-plain`))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  const link = join(BUILDS, `link-${process.pid}`)
  rmSync(link, { force: true })
  symlinkSync(join('.builds', name), link)
  renameSync(link, DIST)
  // by the lock's holder alone; never a build whose process still runs (it may be about to publish it)
  if (lockHolder()?.pid !== process.pid) return
  for (const entry of readdirSync(BUILDS)) {
    if (entry.startsWith('lock') || entry === name || entry === previous) continue
    const pid = Number(entry.split('-')[1])
    if (pid > 0 && pid !== process.pid && alive(pid)) continue
    rmSync(join(BUILDS, entry), { recursive: true, force: true })
  }
}

async function main () {
  const ts = typescript()
  if (fresh(ts)) {
    if (!START) say('dist/ is up to date')
    return
  }
  if (ts === undefined) throw new BuildError('dist/ is missing or out of date, and TypeScript (a dev dependency) is not installed to build it: npm ci, then npm run build')
  mkdirSync(BUILDS, { recursive: true })
  const waitStarted = Date.now()
  let reported = 0
  for (;;) {
    if (tryLock()) {
      try {
        // another process may have built it while this one waited
        if (!fresh(ts)) await build(ts)
      } finally {
        unlock()
      }
      return
    }
    const holder = lockHolder()
    if (holder === undefined) continue
    if ((Number.isInteger(holder.pid) && !alive(holder.pid)) || holder.ageMs > STALE_LOCK_MS) {
      say(`taking over the build lock left by pid ${holder.pid}`)
      takeOver(holder)
      continue
    }
    const waited = Date.now() - waitStarted
    if (waited >= reported && Number.isInteger(holder.pid)) {
      say(reported === 0 ? `waiting for pid ${holder.pid}, which is building dist/` : `still waiting for pid ${holder.pid} (${Math.round(waited / 1000)} s)`)
      reported += PROGRESS_EVERY_MS
    }
    await sleep(100)
  }
}

// stopped while compiling: no compiler left running, no lock left behind
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    compiler?.kill('SIGKILL')
    unlock()
    process.kill(process.pid, signal)
  })
}

try {
  await main()
} catch (err) {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')
  process.stderr.write(START ? `start-up failed: dist/ could not be built: ${message}\n` : `build failed: ${message}\n`)
  process.exitCode = 1
}
