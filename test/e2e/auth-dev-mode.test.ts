/**
 * Identity configuration seen from real processes: development mode (no key
 * configured: a secret generated under DATA_DIR, `npm run token` signing with
 * it), AUTH_DISABLED=true behind a gateway, and the configurations start-up
 * refuses.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir, tempDataDir } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { startServer } from '../helpers/server-process.ts'
import { bearer, signToken, TEST_SECRET } from '../helpers/tokens.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** This process's environment without any AUTH_* variable, plus env. */
function envWithoutAuth (env: Record<string, string>): Record<string, string> {
  const inherited = Object.entries(process.env).filter(([name, value]) => !name.startsWith('AUTH_') && value !== undefined)
  return { ...Object.fromEntries(inherited) as Record<string, string>, ENV_FILE: '', ...env }
}

/** `npm run -s token -- ...args` as a developer runs it. */
async function npmToken (dataDir: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn('npm', ['run', '-s', 'token', '--', ...args], { cwd: ROOT, env: envWithoutAuth({ DATA_DIR: dataDir }), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout: stdout.trim(), stderr }
}

// startServer adds the test secret unless env sets an AUTH_* variable: this one
// changes nothing about the keys, so the server is in development mode
const DEV_MODE = { AUTH_JWKS_REFRESH_MS: '30000' }

t.test('development mode: a generated secret, tokens still required, npm run token signs them', async t => {
  const dataDir = await pgliteDataDir(t)
  const server = await startServer({ DATA_DIR: dataDir, ...DEV_MODE })
  t.teardown(async () => await server.stop())

  const file = join(dataDir, 'auth-secret')
  t.equal(statSync(file).mode & 0o777, 0o600, 'DATA_DIR/auth-secret, readable by its owner only')
  const secret = readFileSync(file, 'utf8')
  t.ok(Buffer.byteLength(secret.trim()) >= 32, 'a secret of at least 32 bytes')
  t.match(server.output.join('\n'), /development mode/, 'the mode is logged')

  const anonymous = await urlClient(server.url).request('GET', '/bookings')
  t.equal(anonymous.status, 401, 'no token: 401')
  t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="ticket-booking"')
  t.equal((await urlClient(server.url, { headers: bearer(await signToken({ sub: 'alice' })) }).request('GET', '/bookings')).status, 401,
    'a token of the test secret is not one of the generated secret')

  const printed = await npmToken(dataDir, ['--role', 'organizer', '--sub', 'alice'])
  t.equal(printed.code, 0, 'npm run -s token exits 0', { stderr: printed.stderr })
  t.match(printed.stdout, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'and prints one token, nothing else')
  const alice = urlClient(server.url, { headers: bearer(printed.stdout) })
  t.equal((await createEvent(alice, [5])).status, 201, 'the printed organizer token creates an event')

  // the secret is generated once: a restart on the same DATA_DIR keeps accepting the token
  await server.stop()
  const again = await startServer({ DATA_DIR: dataDir, ...DEV_MODE })
  t.teardown(async () => await again.stop())
  t.equal(readFileSync(file, 'utf8'), secret, 'the secret file is unchanged after a restart')
  t.equal((await urlClient(again.url, { headers: bearer(printed.stdout) }).request('GET', '/bookings')).status, 200, 'the token still works')
})

t.test('npm run token refuses an unknown role: exit 2 with a message', async t => {
  const dataDir = tempDataDir(t)
  const { code, stdout, stderr } = await npmToken(dataDir, ['--role', 'nope'])
  t.equal(code, 2, 'exit code 2')
  t.match(stderr, /unknown role\(s\): nope/, 'names the role')
  t.equal(stdout, '', 'no token printed')
})

t.test('AUTH_DISABLED=true: a warning at start, no token needed, userId from the body', async t => {
  const dataDir = await pgliteDataDir(t)
  const server = await startServer({ DATA_DIR: dataDir, AUTH_DISABLED: 'true' })
  t.teardown(async () => await server.stop())
  t.match(server.output.join('\n'), /AUTH_DISABLED=true: NO TOKEN IS CHECKED/, 'the warning is in the log')
  const client = urlClient(server.url)
  const { eventId, sectionId } = await createEvent(client, [5])
  const res = await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'walk-in' })
  t.equal(res.status, 201, 'booked with no token')
  t.equal(res.body.data?.userId, 'walk-in', 'for the userId in the body')
  t.equal((await client.request('GET', `/bookings?eventId=${eventId}`)).body.data?.total, 1, 'listed with no token')
  t.throws(() => statSync(join(dataDir, 'auth-secret')), 'no development secret generated')
})

t.test('start refused for contradictory or weak identity settings, naming the variable', async t => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a 20-byte AUTH_JWT_SECRET', { AUTH_JWT_SECRET: 'twenty-bytes-secret!' }, /AUTH_JWT_SECRET/],
    ['AUTH_JWKS_URL and AUTH_JWT_SECRET', { AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json', AUTH_JWT_SECRET: TEST_SECRET }, /AUTH_JWKS_URL and AUTH_JWT_SECRET/],
    ['AUTH_DISABLED with a secret', { AUTH_DISABLED: 'true', AUTH_JWT_SECRET: TEST_SECRET }, /AUTH_DISABLED=true and AUTH_JWKS_URL or AUTH_JWT_SECRET/],
    ['AUTH_DISABLED with a JWKS', { AUTH_DISABLED: 'true', AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' }, /AUTH_DISABLED=true and AUTH_JWKS_URL or AUTH_JWT_SECRET/]
  ]
  t.equal(Buffer.byteLength(cases[0][1].AUTH_JWT_SECRET), 20)
  for (const [what, env, message] of cases) {
    const refused = await startServer({ DATA_DIR: tempDataDir(t), ...env }).then(async server => { await server.stop(); return undefined }, (err: Error) => err.message)
    t.match(refused, /exited with [1-9]\d* before listening/, `${what}: start refused with a non-zero exit`)
    t.match(refused, message, `${what}: the message names it`)
  }
})

// A plugin refusing its configuration is a failed start like any other: one line
// "start-up failed: <message>", no stack trace.
t.test('a refused start is reported by server.ts as "start-up failed: <message>"', async t => {
  const refused = await startServer({ DATA_DIR: tempDataDir(t), AUTH_DISABLED: 'true', AUTH_JWT_SECRET: TEST_SECRET })
    .then(async server => { await server.stop(); return '' }, (err: Error) => err.message)
  t.match(refused, /start-up failed: AUTH_DISABLED=true and AUTH_JWKS_URL or AUTH_JWT_SECRET are set/, 'the handler\'s one-line message, not an uncaught exception')
})
