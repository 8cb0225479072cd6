/**
 * Holds on real server processes sharing PostgreSQL and Redis: confirms
 * racing expiry across three instances, and the sweeper returning seats
 * with no traffic (its lag printed, not asserted).
 */
import t from 'tap'
import { missing } from '../helpers/services.ts'
import { expiryLag, formatExpiryLag } from './holds-expiry-lag.ts'
import { formatHoldsRace, holdsRace } from './holds-race.ts'

const skip = await missing('postgres', 'redis')

t.test('300 holds on 3 instances, confirms just before and after expiry: each confirmed xor expired', { skip }, async t => {
  const r = await holdsRace(t)
  t.comment(formatHoldsRace(r))
  t.same(r.violations, [], 'every 200 confirmed and every 410 expired, in the API and in SQL; invariant holds')
  t.equal(r.heldLeft, 0, 'no hold is left held')
  t.equal(r.confirmed200 + r.expired410, r.holds, 'every hold got a 200 or a 410')
  t.equal(r.confirmedInDb, r.confirmed200, 'confirmed in the database == 200 answers')
  t.equal(r.expiredInDb, r.expired410, 'expired in the database == 410 answers')
  // the scenario is only a race if both outcomes happen
  t.ok(r.confirmed200 > 0 && r.expired410 > 0, 'confirms landed on both sides of expiry')
})

t.test('with no traffic, expired holds come back by the sweeper alone', { skip }, async t => {
  const r = await expiryLag(t)
  t.comment(formatExpiryLag(r))
  t.same(r.violations, [])
  t.equal(r.holds, 20, 'all holds made')
  t.equal(r.neverBack, 0, 'every held seat came back with no booking traffic')
  t.ok(r.sweeps > 0, 'the sweeper ran')
})
