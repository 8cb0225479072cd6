import t from 'tap'
import { isRetryableSqlError, isSqlUnavailable, sqlState } from '../../lib/store/sql/client.ts'

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })

t.test('a database out of reach is unavailable (a 503)', async t => {
  for (const err of [
    withCode('ECONNREFUSED'), withCode('ECONNRESET'), withCode('EPIPE'), withCode('ETIMEDOUT'),
    withCode('08006'), withCode('57P01'), withCode('53300'),
    new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect')
  ]) t.ok(isSqlUnavailable(err), `${(err as { code?: string }).code ?? err.message}`)
})

t.test('anything else stays an error (a 500), not a 503', async t => {
  for (const err of [
    new TypeError('Cannot read properties of undefined'), withCode('ERR_INVALID_ARG_TYPE'), withCode('42P01'),
    withCode('23505'), withCode('22P02'), 'a string', null
  ]) t.notOk(isSqlUnavailable(err), String((err as { code?: string } | null)?.code ?? err))
})

t.test('SQLSTATEs: a node error code is not one; conflicts are retryable', async t => {
  t.equal(sqlState(withCode('EPIPE')), undefined, 'EPIPE has five capitals but is a socket error')
  t.equal(sqlState(withCode('40001')), '40001')
  t.ok(isRetryableSqlError(withCode('40P01')))
  t.ok(isRetryableSqlError(withCode('23505')))
  t.notOk(isRetryableSqlError(withCode('23514')), 'a CHECK violation is not retried')
})
