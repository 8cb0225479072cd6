/**
 * The production start, as the README and the Docker image run it: `npm start`
 * builds dist/ when it is missing or stale (scripts/build.mjs) and runs plain
 * node on the compiled server, no tsx.
 * SIGTERM to npm reaches the server, which shuts down gracefully: npm exits 0,
 * no process of the tree is left and the port is free.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDataDir } from '../helpers/databases.ts'
import { onProcessExit } from '../helpers/exit-hooks.ts'
import { pollUntil } from '../helpers/poll.ts'
import { alive, processTree, signalTree } from '../helpers/processes.ts'
import { freePort, shellEnv } from '../helpers/server-process.ts'
import { withTestAuth } from '../helpers/tokens.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function commandLine (pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return ''
  }
}

/** Whether something accepts connections on the port. */
async function listening (port: number): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1')
  return await new Promise(resolve => {
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

t.test('npm start: plain node on the compiled server; SIGTERM to npm stops it gracefully, nothing left behind', async t => {
  const port = await freePort()
  // npm_*: npm test's own variables would tell this npm it runs inside a script
  const inherited = Object.fromEntries(Object.entries(shellEnv()).filter(([name]) => !name.startsWith('npm_')))
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { ...inherited, ENV_FILE: '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...withTestAuth({ DATA_DIR: tempDataDir(t) }) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  npm.stdout.on('data', (d: Buffer) => output.push(d.toString()))
  npm.stderr.on('data', (d: Buffer) => output.push(d.toString()))
  const exited = once(npm, 'exit')
  let tree: number[] = []
  const unregister = onProcessExit(() => { signalTree(npm.pid!, 'SIGKILL') })
  t.teardown(() => {
    unregister()
    for (const pid of [...tree, npm.pid!]) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })

  // a build may come first: a generous deadline
  await pollUntil(`npm start answering /health (output: ${output.join('')})`,
    async () => await fetch(`http://127.0.0.1:${port}/health`).then(r => r.ok ? true : undefined, () => undefined), { timeoutMs: 240_000, everyMs: 250 })
  tree = processTree(npm.pid!)
  const commands = tree.map(commandLine)
  t.ok(commands.some(c => /^node dist\/server\.js$/.test(c) || c.endsWith('node dist/server.js')), 'node runs the compiled dist/server.js', { commands })
  t.notOk(commands.some(c => c.includes('tsx')), 'no tsx in production', { commands })
  t.equal(tree.length, 2, 'npm and node, no shell between them (npm\'s signals reach node)', { commands })

  npm.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0, 'npm exits 0', { signal, output: output.join('').split('\n').slice(-10) })
  await pollUntil('every process of the tree gone', async () => tree.every(pid => !alive(pid)) ? true : undefined)
  t.pass('no orphan: every process of the tree is gone')
  t.notOk(await listening(port), 'the port is free')
  t.match(output.join(''), /"msg":"shutting down"/, 'the server shut down gracefully (its log says so)')
})
