import t from 'tap'
import { createTokenVerifier } from '../../lib/auth/token-verifier.ts'
import { UnauthenticatedError } from '../../lib/domain/errors.ts'
import { TEST_SECRET, signToken } from '../helpers/tokens.ts'

/** A verifier on the test secret whose clock the test moves (epoch ms). */
function verifierAt (start: number, options: { cacheMs?: number, cacheSize?: number } = {}) {
  const time = { now: start }
  const verifier = createTokenVerifier({ secret: TEST_SECRET, clock: () => time.now, ...options })
  return { verifier, time }
}

const refusal = async (promise: Promise<unknown>): Promise<string> => {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  if (!(err instanceof UnauthenticatedError)) throw new Error(`expected a refusal, got ${String(err)}`)
  return err.message
}

t.test('a verified token is known afterwards, with its principal; an unknown one is not', async t => {
  const { verifier } = verifierAt(Date.now())
  const token = await signToken({ sub: 'alice', roles: ['customer'] })
  t.equal(verifier.known(token), undefined)
  t.same(await verifier.verify(token), { sub: 'alice', roles: ['customer'] })
  t.same(verifier.known(token), { sub: 'alice', roles: ['customer'] })
})

t.test('an expired token is refused even though it was remembered', async t => {
  const start = Date.now()
  const { verifier, time } = verifierAt(start, { cacheMs: 3_600_000 })
  const token = await signToken({ sub: 'alice', expiresIn: 60 })
  await verifier.verify(token)
  t.ok(verifier.known(token), 'remembered while valid')
  // past exp: no longer known, though cacheMs has not run out
  time.now = start + 61_000
  t.equal(verifier.known(token), undefined)
  // past exp and the clock tolerance: refused
  time.now = start + 70_000
  t.match(await refusal(verifier.verify(token)), /token expired/)
  t.equal(verifier.known(token), undefined)
})

t.test('a remembered token is checked again once cacheMs has passed', async t => {
  const start = Date.now()
  const { verifier, time } = verifierAt(start, { cacheMs: 1000 })
  const token = await signToken({ sub: 'alice' })
  await verifier.verify(token)
  time.now = start + 999
  t.ok(verifier.known(token))
  time.now = start + 1000
  t.equal(verifier.known(token), undefined)
  t.same(await verifier.verify(token), { sub: 'alice', roles: ['customer'] }, 'still valid: verified and remembered again')
  t.ok(verifier.known(token))
})

t.test('a token with a bad signature, or not yet valid, is never remembered', async t => {
  const { verifier } = verifierAt(Date.now())
  const forged = await signToken({ sub: 'mallory', roles: ['admin'], secret: 'another-secret-0123456789-abcdefghijklmn' })
  t.match(await refusal(verifier.verify(forged)), /signature invalid/)
  t.equal(verifier.known(forged), undefined)
  t.match(await refusal(verifier.verify(forged)), /signature invalid/, 'refused again: checked again')
  const early = await signToken({ sub: 'alice', claims: { nbf: Math.floor(Date.now() / 1000) + 600 } })
  t.match(await refusal(verifier.verify(early)), /not yet valid/)
  t.equal(verifier.known(early), undefined)
})

t.test('the memory is bounded: past cacheSize the least recently used token is forgotten', async t => {
  const { verifier } = verifierAt(Date.now(), { cacheSize: 2 })
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async sub => await signToken({ sub })))
  await verifier.verify(a)
  await verifier.verify(b)
  verifier.known(a) // a used last: b is the least recently used
  await verifier.verify(c)
  t.ok(verifier.known(a))
  t.equal(verifier.known(b), undefined)
  t.ok(verifier.known(c))
})
