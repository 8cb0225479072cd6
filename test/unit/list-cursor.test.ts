import { ObjectId } from 'mongodb'
import t from 'tap'
import { decodeCursor, encodeCursor, listPage, listQuery } from '../../lib/domain/list-cursor.ts'
import { InvalidInputError } from '../../lib/domain/errors.ts'
import { afterPosition } from '../../lib/store/mongo/documents.ts'

const EVENT = '6650a1f2c3d4e5f6a7b8c9d0'
const BOOKING = '6650b7e4a1b2c3d4e5f6a7b86650a1f2c3d4e5f6a7b8c9d1'
const AT = '2026-06-01T19:30:00.000Z'
const text = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('a cursor names the position of the item it was made from', async t => {
  t.same(decodeCursor(encodeCursor({ createdAt: AT, _id: EVENT }), 'events'), { createdAt: AT, id: EVENT })
  t.same(decodeCursor(encodeCursor({ createdAt: AT, _id: BOOKING }), 'bookings'), { createdAt: AT, id: BOOKING })
  t.same(decodeCursor(encodeCursor({ createdAt: AT, _id: EVENT }), 'bookings'), { createdAt: AT, id: EVENT }, 'a booking made before ids named their section')
  t.equal(encodeCursor({ createdAt: AT, _id: EVENT }), 'WyIyMDI2LTA2LTAxVDE5OjMwOjAwLjAwMFoiLCI2NjUwYTFmMmMzZDRlNWY2YTdiOGM5ZDAiXQ', 'the schema\'s example')
})

t.test('anything else is no cursor', async t => {
  const malformed: Array<[string, string]> = [
    ['not base64url', 'abc+/='],
    ['base64url of no JSON', Buffer.from('[1,').toString('base64url')],
    ['an object', text({ createdAt: AT, id: EVENT })],
    ['one value', text([AT])],
    ['three values', text([AT, EVENT, 1])],
    ['numbers', text([Date.parse(AT), EVENT])],
    ['no moment', text(['yesterday', EVENT])],
    ['a moment in another form', text(['2026-06-01T19:30:00Z', EVENT])],
    ['a moment that does not exist', text(['2026-02-30T19:30:00.000Z', EVENT])],
    ['an id in upper case', text([AT, EVENT.toUpperCase()])],
    ['an id of another list', text([AT, BOOKING])],
    ['an operator for an id', text([AT, { $gt: '' }])],
    ['valid, with characters outside the alphabet in it', `${encodeCursor({ createdAt: AT, _id: EVENT })}!`]
  ]
  for (const [what, cursor] of malformed) t.equal(decodeCursor(cursor, 'events'), null, what)
})

t.test('a page is asked for by number or by cursor, never both', async t => {
  t.same(listQuery({}, 'events'), { page: 1, limit: 20 })
  t.same(listQuery({ page: 3, limit: 5 }, 'events'), { page: 3, limit: 5 })
  t.same(listQuery({ cursor: encodeCursor({ createdAt: AT, _id: BOOKING }), limit: 5 }, 'bookings'), { page: 1, limit: 5, after: { createdAt: AT, id: BOOKING } })
  t.throws(() => listQuery({ cursor: encodeCursor({ createdAt: AT, _id: EVENT }), page: 1 }, 'events'),
    new InvalidInputError('page', 'querystring.page cannot be sent with cursor: a cursor names its page'))
  const bad = (() => { try { listQuery({ cursor: 'abc' }, 'events') } catch (err) { return err } })()
  t.ok(bad instanceof InvalidInputError)
  t.match(bad, { code: 'VALIDATION_ERROR', details: { field: 'cursor' }, message: /cursor/ })
})

t.test('a full page has the cursor of its last item; a short one none', async t => {
  const items = [{ createdAt: AT, _id: 'b' }, { createdAt: AT, _id: 'a' }]
  t.same(listPage(items, 7, { page: 2, limit: 2 }), { items, total: 7, page: 2, limit: 2, nextCursor: encodeCursor(items[1]) })
  t.same(listPage(items, 7, { page: 1, limit: 3 }).nextCursor, null)
  t.same(listPage([], 0, { page: 1, limit: 3 }).nextCursor, null)
})

t.test('MongoDB: the documents after a position, the filter kept', async t => {
  const at = new Date(AT)
  t.strictSame(afterPosition({ status: 'held' }, at, BOOKING), {
    $and: [{ status: 'held' }, { createdAt: { $lte: at }, $or: [{ createdAt: { $lt: at } }, { createdAt: at, _id: { $lt: BOOKING } }] }]
  })
  // _id: -1 lists a moment's ObjectIds (bookings from before) before its strings; $lt compares one type
  const legacy = new ObjectId(EVENT)
  t.strictSame(afterPosition({}, at, legacy), {
    $and: [{}, {
      createdAt: { $lte: at },
      $or: [{ createdAt: { $lt: at } }, { createdAt: at, _id: { $lt: legacy } }, { createdAt: at, _id: { $type: 'string' } }]
    }]
  }, 'after an ObjectId, the moment\'s string ids follow')
})
