/**
 * The SQL store decides a batch from a read and writes it in one statement
 * guarded by every section still being at the remaining it read. Here a real
 * second writer (another store on the same database) books or cancels in the
 * very gap between that read and that write: the guard refuses, the batch
 * runs again as a transaction that locks its rows, and the answers are those
 * of a batch decided after the other writer. Embedded (PGlite) and PostgreSQL.
 */
import t from 'tap'
import type { BookingRequest } from '../../lib/domain/allocation.ts'
import type { OpResult, SectionOp } from '../../lib/domain/section-ops.ts'
import type { SqlClient, SqlQueryable } from '../../lib/store/sql/client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { invariantProblems } from '../helpers/invariant.ts'
import { granted, sectionBatch } from '../helpers/section-batch.ts'
import { SQL_ADAPTERS } from '../helpers/sql-adapters.ts'

interface Interposed {
  client: SqlClient
  /** the next batch's read (or its next statement containing `after`) is followed by `fn` before the batch goes on */
  once: (fn: () => Promise<void>, after?: string) => void
  /** batches begun without a transaction, transactions begun, and batch reads that read bookings */
  calls: { session: number, transaction: number, bookingReads: number }
  /** batch reads of all kinds (sections, with or without bookings) */
  reads: () => number
}

/** The client, with a hook between a batch's read of its sections and what follows. */
function interposed (client: SqlClient): Interposed {
  let between: (() => Promise<void>) | undefined
  let marker = ''
  const calls = { session: 0, transaction: 0, bookingReads: 0 }
  let reads = 0
  const hooked = (conn: SqlQueryable): SqlQueryable => ({
    async query<R> (text: string, params?: unknown[]) {
      if (text.includes('WITH locked AS')) reads++
      if (text.includes('WITH locked AS') && text.includes('id = ANY($2')) calls.bookingReads++
      const result = await conn.query<R>(text, params)
      const fn = between
      if (fn !== undefined && text.includes(marker)) {
        between = undefined
        await fn()
      }
      return result
    }
  })
  return {
    client: {
      query: client.query,
      transaction: async (fn, signal) => { calls.transaction++; return await client.transaction(async tx => await fn(hooked(tx)), signal) },
      session: async (fn, signal) => { calls.session++; return await client.session(async conn => await fn(hooked(conn)), signal) }
    },
    once: (fn, after = 'WITH locked AS') => {
      between = fn
      marker = after
    },
    calls,
    reads: () => reads
  }
}

const buy = (ids: { eventId: string, sectionId: string }, qty: number, userId: string): BookingRequest => ({ ...ids, qty, userId })
const kinds = (results: OpResult[]): string[] => results.map(r => r.kind)

for (const adapter of SQL_ADAPTERS) {
  if (adapter.skip !== undefined) console.log(`# SKIPPED guarded write on ${adapter.name}: ${adapter.skip}`)
  t.test(`guarded write: ${adapter.name}`, { skip: adapter.skip }, async t => {
    const opened = await adapter.open(t)
    t.teardown(opened.close)
    const hook = interposed(opened.client)
    /** retries the store reported to its observer, by operation */
    const retries: string[] = []
    const store = createSqlStore(hook.client, { kind: opened.kind, observer: { retry: operation => { retries.push(operation) } } })
    /** the other writer: another instance's store on the same database */
    const other = createSqlStore(opened.client, { kind: opened.kind })
    await store.init()

    async function section (capacity: number) {
      const event = await store.createEvent({ name: 'Guarded', sections: [{ name: 'S', price: 10, capacity }] }, 'organizer-1')
      return { eventId: event._id, sectionId: event.sections[0]._id }
    }
    /** One batch of these ops: its result, and how it ran (batches begun without and with a transaction, booking reads) */
    async function counted (ids: { eventId: string, sectionId: string }, ops: SectionOp[]) {
      const before = { ...hook.calls }
      const result = await sectionBatch(store, ids.eventId, ids.sectionId, ops)
      const delta = Object.fromEntries(Object.entries(hook.calls).map(([k, v]) => [k, v - before[k as keyof typeof before]]))
      return { result, calls: delta }
    }
    /** One batch: a pair of seats for a, then one for b */
    const pairThenSingle = async (ids: { eventId: string, sectionId: string }) =>
      await counted(ids, [{ kind: 'book', request: buy(ids, 2, 'a') }, { kind: 'book', request: buy(ids, 1, 'b') }])
    /** Resolves once the database's clock has passed `moment`: a hold ends on that clock, not this process's. */
    async function pastOnDatabaseClock (moment: string | undefined): Promise<void> {
      const { rows: [row] } = await opened.client.query<{ wait: number }>('SELECT GREATEST(0, EXTRACT(EPOCH FROM ($1::timestamptz - clock_timestamp())) * 1000)::float8 AS wait', [moment])
      await new Promise(resolve => setTimeout(resolve, row.wait + 5))
    }
    async function problems (store: Store, eventId: string): Promise<string[]> {
      const event = await store.getEvent(eventId)
      const { items } = await store.listBookings({ eventId, page: 1, limit: 100 })
      return invariantProblems(event?.sections ?? [], items)
    }

    t.test('seats taken in the gap: the batch is decided again on what is left, nothing sold twice', async t => {
      const ids = await section(2)
      hook.once(async () => {
        t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [{ kind: 'book', request: buy(ids, 1, 'other') }])).results), ['confirmed'])
      })
      const { result, calls } = await pairThenSingle(ids)
      t.same(kinds(result.results), ['sold_out', 'confirmed'], 'the 2 seats read are no longer there: the pair is sold out, the single fits')
      t.equal(result.remaining, 0)
      t.same(calls, { session: 1, transaction: 1, bookingReads: 0 }, 'the guarded write refused, the batch ran again as a transaction')
      t.same(retries.splice(0), ['book'], 'counted as a retry')
      t.same(await problems(store, ids.eventId), [])
      const event = await store.getEvent(ids.eventId)
      t.match(event?.sections[0], { capacity: 2, remaining: 0, sold: 2 })
    })

    t.test('seats given back in the gap: nobody in the batch is told sold out while they are there', async t => {
      const ids = await section(3)
      const first = (await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: buy(ids, 1, 'c') }])).results[0]
      if (first.kind !== 'confirmed') throw new Error(`expected a booking, got ${first.kind}`)
      hook.once(async () => {
        t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [{ kind: 'cancel', access: granted, bookingId: first.booking._id }])).results), ['cancelled'])
      })
      const { result, calls } = await pairThenSingle(ids)
      t.same(kinds(result.results), ['confirmed', 'confirmed'], 'the seat given back is sold, not refused')
      t.equal(result.remaining, 0)
      t.same(calls, { session: 1, transaction: 1, bookingReads: 0 })
      t.same(retries.splice(0), ['book'])
      t.same(await problems(store, ids.eventId), [])
    })

    t.test('a hold made in the gap by a writer that nets zero seats: the sweep does not push its expiry later', async t => {
      const ids = await section(10)
      const op = async (store: Store, ops: SectionOp[]) => (await sectionBatch(store, ids.eventId, ids.sectionId, ops)).results
      const booking = (result: OpResult | undefined) => {
        if (result?.kind !== 'held' && result?.kind !== 'confirmed') throw new Error(`expected a booking, got ${result?.kind}`)
        return result.booking
      }
      // a short hold, released: the section's next expiry stays at its end (early is allowed, never late)
      const short = booking((await op(store, [{ kind: 'book', request: { ...buy(ids, 1, 'short'), holdDefaultMs: 1000 } }]))[0])
      await op(store, [{ kind: 'cancel', access: granted, bookingId: short._id }])
      const long = booking((await op(store, [{ kind: 'book', request: { ...buy(ids, 1, 'long'), holdDefaultMs: 600_000 } }]))[0])
      const paid = booking((await op(store, [{ kind: 'book', request: buy(ids, 1, 'paid') }]))[0])
      await pastOnDatabaseClock(short.expiresAt)
      let made: string | undefined
      // between the sweep's read of the section's holds and its write
      hook.once(async () => {
        // another writer whose lock outlived its lease: a hold ending before the long one, and a cancellation (net zero seats)
        const results = await op(other, [
          { kind: 'book', request: { ...buy(ids, 1, 'between'), holdDefaultMs: 60_000 } },
          { kind: 'cancel', access: granted, bookingId: paid._id }
        ])
        made = booking(results[0]).expiresAt
      }, 'min(expires_at)')
      await op(store, [{ kind: 'expire' }])
      t.ok(made !== undefined && long.expiresAt !== undefined && made < long.expiresAt, 'the hold made in the gap ends first')
      const { rows: [row] } = await opened.client.query<{ early: boolean }>(
        'SELECT next_expiry <= $2::timestamptz AS early FROM sections WHERE id = $1', [ids.sectionId, made])
      t.equal(row.early, true, 'the section\'s next expiry is no later than that hold\'s end')
      retries.splice(0)
      t.same(await problems(store, ids.eventId), [])
    })

    t.test('no other writer: one read and one write, no transaction', async t => {
      const ids = await section(5)
      const { result, calls } = await pairThenSingle(ids)
      t.same(kinds(result.results), ['confirmed', 'confirmed'])
      t.equal(result.remaining, 2)
      t.same(calls, { session: 1, transaction: 0, bookingReads: 0 })
      t.same(retries.splice(0), [], 'no retry')
    })

    t.test('bookings as seen after their requests came: the batch reads its sections only; a stale one is refused, then read', async t => {
      const ids = await section(5)
      const held = (await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...buy(ids, 1, 'h'), holdDefaultMs: 600_000 } }])).results[0]
      if (held.kind !== 'held') throw new Error(`expected a hold, got ${held.kind}`)
      const seen = await store.getBooking(held.booking._id)
      if (seen === null) throw new Error('hold not stored')
      const fresh = await counted(ids, [{ kind: 'confirm', access: granted, bookingId: seen._id, paymentRef: 'p1', seen }])
      t.same(kinds(fresh.result.results), ['hold_confirmed'])
      t.same(fresh.calls, { session: 1, transaction: 0, bookingReads: 0 }, 'no read of the booking, no transaction')
      t.same(retries.splice(0), [])
      const stale = await counted(ids, [{ kind: 'cancel', access: granted, bookingId: seen._id, seen }])
      t.match(stale.result.results, [{ kind: 'cancelled', changed: true, from: 'confirmed' }], 'decided on the booking as stored')
      t.same(stale.calls, { session: 1, transaction: 1, bookingReads: 1 }, 'the write refused the stale snapshot; the transaction read the booking')
      t.same(retries.splice(0), ['book'])
      t.same(await problems(store, ids.eventId), [])
    })

    t.test('holds this store made: confirmed or released without reading them; one another writer changed is refused, then read', async t => {
      const ids = await section(10)
      const hold = async (userId: string, holdDefaultMs = 600_000) => {
        const made = (await sectionBatch(store, ids.eventId, ids.sectionId, [{ kind: 'book', request: { ...buy(ids, 1, userId), holdDefaultMs } }])).results[0]
        if (made.kind !== 'held') throw new Error(`expected a hold, got ${made.kind}`)
        return made.booking
      }
      const confirm = (bookingId: string, paymentRef: string): SectionOp => ({ kind: 'confirm', access: granted, bookingId, paymentRef })
      const cancel = (bookingId: string): SectionOp => ({ kind: 'cancel', access: granted, bookingId })

      const paid = (await hold('a'))._id
      const confirmed = await counted(ids, [confirm(paid, 'p1')])
      t.match(confirmed.result.results, [{ kind: 'hold_confirmed', changed: true, booking: { status: 'confirmed', paymentRef: 'p1' } }])
      t.equal(confirmed.calls.bookingReads, 0, 'no read of the booking')
      t.equal(confirmed.calls.transaction, 0)
      const again = await counted(ids, [confirm(paid, 'p1')])
      t.match(again.result.results, [{ kind: 'hold_confirmed', changed: false }], 'changed by this store: forgotten, read')
      t.equal(again.calls.bookingReads, 1)

      const released = await counted(ids, [cancel((await hold('b'))._id)])
      t.match(released.result.results, [{ kind: 'cancelled', changed: true, from: 'held' }])
      t.same([released.calls.bookingReads, released.calls.transaction], [0, 0], 'released without a read')
      t.same(retries.splice(0), [])

      // another instance confirms, releases: this store's memory of the holds is stale
      const elsewherePaid = (await hold('c'))._id
      t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [confirm(elsewherePaid, 'p2')])).results), ['hold_confirmed'])
      const replay = await counted(ids, [confirm(elsewherePaid, 'p2')])
      t.match(replay.result.results, [{ kind: 'hold_confirmed', changed: false, booking: { status: 'confirmed', paymentRef: 'p2' } }], 'the payment\'s retry gets the same answer')
      t.same([replay.calls.transaction, replay.calls.bookingReads], [1, 1], 'the write refused the memory; the transaction read the booking')
      const otherRef = await counted(ids, [confirm(elsewherePaid, 'p3')])
      t.same(kinds(otherRef.result.results), ['invalid_state'])
      const elsewhereReleased = (await hold('d'))._id
      t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [cancel(elsewhereReleased)])).results), ['cancelled'])
      const late = await counted(ids, [confirm(elsewhereReleased, 'p4')])
      t.same(kinds(late.result.results), ['invalid_state'], 'a released hold is not confirmed from memory')
      t.equal(late.calls.transaction, 1)
      t.same(retries.splice(0), ['book', 'book'])

      // a hold past its end on the database's clock: expired, never confirmed
      const ending = await hold('e', 1)
      await pastOnDatabaseClock(ending.expiresAt)
      const expired = await counted(ids, [confirm(ending._id, 'p5')])
      t.same(kinds(expired.result.results), ['hold_expired'])
      t.same(expired.result.expired.map(e => e.qty), [1], 'its seat back on sale')
      retries.splice(0)

      t.same(await problems(store, ids.eventId), [])
      const event = await store.getEvent(ids.eventId)
      t.match(event?.sections[0], { capacity: 10, sold: 2, held: 0, remaining: 8 })
    })

    t.test('sections remembered from this store\'s last batches', async t => {
      // remembered for as long as the test takes: what it shows does not hang on timing
      const remembering = createSqlStore(hook.client, {
        kind: opened.kind,
        sectionMemory: { freshMs: 600_000, sharedMs: 600_000 },
        observer: { retry: operation => { retries.push(operation) } }
      })
      const batch = async (ids: { eventId: string, sectionId: string }, ops: SectionOp[]) => {
        const before = { ...hook.calls, reads: hook.reads() }
        const result = await sectionBatch(remembering, ids.eventId, ids.sectionId, ops)
        return { result, reads: hook.reads() - before.reads, transactions: hook.calls.transaction - before.transaction }
      }
      const book = (ids: { eventId: string, sectionId: string }, qty: number, userId: string, holdDefaultMs?: number): SectionOp =>
        ({ kind: 'book', request: holdDefaultMs === undefined ? buy(ids, qty, userId) : { ...buy(ids, qty, userId), holdDefaultMs } })

      t.test('no other writer: the next batch writes without reading the section again', async t => {
        const ids = await section(5)
        t.equal((await batch(ids, [book(ids, 2, 'a')])).reads, 1, 'the first batch reads it')
        const next = await batch(ids, [book(ids, 2, 'b'), book(ids, 1, 'c')])
        t.same(kinds(next.result.results), ['confirmed', 'confirmed'])
        t.equal(next.result.remaining, 0)
        t.same([next.reads, next.transactions], [0, 0], 'no read, no transaction: decided on the remaining its write returned')
        t.same(retries.splice(0), [])
        t.same(await problems(remembering, ids.eventId), [])
      })

      t.test('another writer in between: the write refuses the memory, the transaction reads, nothing sold twice', async t => {
        const ids = await section(3)
        await batch(ids, [book(ids, 1, 'a')])
        t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [book(ids, 2, 'other')])).results), ['confirmed'])
        const next = await batch(ids, [book(ids, 1, 'b')])
        t.same(kinds(next.result.results), ['sold_out'], 'decided again on what the other writer left')
        t.equal(next.transactions, 1)
        t.same(retries.splice(0), ['book'], 'counted as a retry')
        t.same(await problems(remembering, ids.eventId), [])
        const event = await remembering.getEvent(ids.eventId)
        t.match(event?.sections[0], { capacity: 3, remaining: 0, sold: 3 })
      })

      t.test('a section refused once is read from then on: instances sharing it pay no retry a turn', async t => {
        const ids = await section(5)
        await batch(ids, [book(ids, 1, 'a')])
        await sectionBatch(other, ids.eventId, ids.sectionId, [book(ids, 1, 'other')])
        const refused = await batch(ids, [book(ids, 1, 'b')])
        t.equal(refused.transactions, 1, 'the memory was stale: refused, then the transaction')
        t.same(retries.splice(0), ['book'])
        await sectionBatch(other, ids.eventId, ids.sectionId, [book(ids, 1, 'other')])
        const next = await batch(ids, [book(ids, 1, 'c')])
        t.same(kinds(next.result.results), ['confirmed'])
        t.same([next.reads, next.transactions], [1, 0], 'read first, so the other writer\'s booking is no surprise')
        t.same(retries.splice(0), [], 'no retry')
        t.same(await problems(remembering, ids.eventId), [])
      })

      t.test('remembered sold out: a batch asking for seats reads, and sells those given back meanwhile', async t => {
        const ids = await section(2)
        const sold = await batch(ids, [book(ids, 1, 'a'), book(ids, 1, 'b')])
        t.equal(sold.result.remaining, 0)
        const first = sold.result.results[0]
        if (first.kind !== 'confirmed') throw new Error(`expected a booking, got ${first.kind}`)
        t.same(kinds((await sectionBatch(other, ids.eventId, ids.sectionId, [{ kind: 'cancel', access: granted, bookingId: first.booking._id }])).results), ['cancelled'])
        const next = await batch(ids, [book(ids, 1, 'c')])
        t.same(kinds(next.result.results), ['confirmed'], 'never told sold out from memory')
        t.same([next.reads, next.transactions], [1, 0], 'read at once: more seats asked than remembered')
        t.same(retries.splice(0), [])
        t.same(await problems(remembering, ids.eventId), [])
      })

      t.test('a write whose commit fails leaves nothing of itself in memory', async t => {
        const ids = await section(5)
        await batch(ids, [book(ids, 1, 'a')])
        // a commit refused by the database itself: a deferred check on the section's row
        await opened.client.query('CREATE TABLE IF NOT EXISTS doomed_sections (id text PRIMARY KEY)')
        await opened.client.query(`CREATE OR REPLACE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF EXISTS (SELECT 1 FROM doomed_sections WHERE id = NEW.id) THEN RAISE EXCEPTION 'commit refused'; END IF;
            RETURN NULL;
          END $$`)
        await opened.client.query('DROP TRIGGER IF EXISTS refuse_commit ON sections')
        await opened.client.query('CREATE CONSTRAINT TRIGGER refuse_commit AFTER UPDATE ON sections DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()')
        t.teardown(async () => { await opened.client.query('DROP TRIGGER IF EXISTS refuse_commit ON sections') })
        hook.once(async () => {
          // another writer in the gap: this batch's write is refused and it runs as a transaction, whose commit fails
          await sectionBatch(other, ids.eventId, ids.sectionId, [book(ids, 1, 'other')])
          await opened.client.query('INSERT INTO doomed_sections (id) VALUES ($1)', [ids.sectionId])
        })
        // more seats than remembered: read, not recalled
        await t.rejects(sectionBatch(remembering, ids.eventId, ids.sectionId, [book(ids, 5, 'b'), book(ids, 1, 'c')]), /commit refused/)
        await opened.client.query('DELETE FROM doomed_sections WHERE id = $1', [ids.sectionId])
        retries.splice(0)
        const next = await batch(ids, [book(ids, 1, 'd')])
        t.same(kinds(next.result.results), ['confirmed'])
        t.equal(next.result.remaining, 2, 'decided on what was committed')
        t.equal(next.transactions, 0, 'no write refused: nothing was remembered of the write that never committed')
        t.same(retries.splice(0), [], 'no retry')
        t.same(await problems(remembering, ids.eventId), [])
      })

      t.test('a change of price or of the event\'s rules raises the section\'s version: a remembered section is read again', async t => {
        const ids = await section(5)
        await batch(ids, [book(ids, 1, 'a')])
        // as a price change writes it
        await opened.client.query('UPDATE sections SET price = 25, version = version + 1 WHERE id = $1', [ids.sectionId])
        const priced = await batch(ids, [book(ids, 1, 'b')])
        t.match(priced.result.results, [{ kind: 'confirmed', booking: { unitPrice: 25, amount: 25 } }], 'sold at the new price')
        // as a change of the event's hold length writes it: every section of the event
        await opened.client.query('UPDATE events SET hold_seconds = 7 WHERE id = $1', [ids.eventId])
        await opened.client.query('UPDATE sections SET version = version + 1 WHERE event_id = $1', [ids.eventId])
        const held = await batch(ids, [book(ids, 1, 'c', 600_000)])
        const hold = held.result.results[0]
        if (hold.kind !== 'held') throw new Error(`expected a hold, got ${hold.kind}`)
        t.equal(Date.parse(hold.booking.expiresAt ?? '') - Date.parse(hold.booking.createdAt), 7000, 'held for the event\'s new hold length')
        retries.splice(0)
        t.same(await problems(remembering, ids.eventId), [])
      })

      t.test('a sweep reads its section: another writer\'s hold is expired on time', async t => {
        const ids = await section(3)
        await batch(ids, [book(ids, 1, 'a')])
        const hold = (await sectionBatch(other, ids.eventId, ids.sectionId, [book(ids, 1, 'h', 1)])).results[0]
        if (hold.kind !== 'held') throw new Error(`expected a hold, got ${hold.kind}`)
        await pastOnDatabaseClock(hold.booking.expiresAt)
        const swept = await batch(ids, [{ kind: 'expire' }])
        t.equal(swept.reads, 1, 'read, not remembered')
        t.same(swept.result.expired.map(e => e.qty), [1], 'the other writer\'s hold expired')
        t.equal(swept.result.remaining, 2)
        t.same(retries.splice(0), [])
        t.same(await problems(remembering, ids.eventId), [])
      })
    })

    t.test('an event with maxPerUser: its users\' seats are read under locks, as one transaction', async t => {
      const event = await store.createEvent({ name: 'Capped', maxPerUser: 2, sections: [{ name: 'S', price: 10, capacity: 5 }] }, 'organizer-1')
      const ids = { eventId: event._id, sectionId: event.sections[0]._id }
      const before = { ...hook.calls }
      const result = await sectionBatch(store, ids.eventId, ids.sectionId, [
        { kind: 'book', request: buy(ids, 2, 'a') },
        { kind: 'book', request: buy(ids, 1, 'a') }
      ])
      t.same(kinds(result.results), ['confirmed', 'limit_exceeded'])
      t.equal(hook.calls.transaction - before.transaction, 1)
      t.same(retries.splice(0), [], 'a batch that needs locks from the start is no retry')
      t.same(await problems(store, ids.eventId), [])
    })
  })
}
