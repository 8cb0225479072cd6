/**
 * The relational schema, run by the PostgreSQL and embedded (PGlite) adapters
 * alike. Every statement is idempotent; the advisory lock keeps instances that
 * start at the same moment from racing on CREATE. Databases made by earlier
 * versions are brought up to date by the ALTERs and DO blocks.
 */
import { WAITLIST_SCHEMA } from './waitlist-rows.ts'

export const MIGRATION_LOCK_ID = 7_214_311

const BOOKING_STATUS_CHECK = "CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired'))"

export const SCHEMA_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS events (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL,
    -- the organizer's sub ('' for events made before owners existed: only admins manage them)
    owner_id     text NOT NULL DEFAULT '',
    -- the event's hold length; NULL: HOLD_TTL_MS
    hold_seconds int CHECK (hold_seconds > 0),
    -- most seats one user may hold plus have confirmed; NULL: no cap
    max_per_user int CHECK (max_per_user > 0)
  )`,
  "ALTER TABLE events ADD COLUMN IF NOT EXISTS owner_id text NOT NULL DEFAULT ''",
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS hold_seconds int CHECK (hold_seconds > 0)',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS max_per_user int CHECK (max_per_user > 0)',
  // the lifecycle: events made before it are published, with no window and no details
  `ALTER TABLE events ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'published'
    CHECK (status IN ('draft', 'published', 'closed', 'cancelled'))`,
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS description text',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS venue text',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS starts_at timestamptz',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS ends_at timestamptz',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS sales_start timestamptz',
  'ALTER TABLE events ADD COLUMN IF NOT EXISTS sales_end timestamptz',
  'CREATE INDEX IF NOT EXISTS events_created ON events (created_at DESC, id DESC)',

  `CREATE TABLE IF NOT EXISTS sections (
    id          text PRIMARY KEY,
    event_id    text NOT NULL REFERENCES events (id),
    position    int NOT NULL,
    name        text NOT NULL,
    price       numeric(12, 2) NOT NULL,
    capacity    int NOT NULL CHECK (capacity > 0),
    -- the last line of defence: no code path can make remaining negative
    remaining   int NOT NULL CHECK (remaining >= 0 AND remaining <= capacity),
    -- booking rows of the section, any status, kept by the booking transaction:
    -- list totals by event or section without counting 100,000s of rows
    bookings    int NOT NULL DEFAULT 0 CHECK (bookings >= 0),
    held        int NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold        int NOT NULL DEFAULT 0 CHECK (sold >= 0),
    -- no later than the earliest expires_at of the section's holds: the sweeper's and the batch's cue
    next_expiry timestamptz,
    -- raised by every write of the section: a write decided on an unlocked read is guarded by it
    version     bigint NOT NULL DEFAULT 0
  )`,
  'ALTER TABLE sections ADD COLUMN IF NOT EXISTS held int NOT NULL DEFAULT 0 CHECK (held >= 0)',
  'ALTER TABLE sections ADD COLUMN IF NOT EXISTS sold int NOT NULL DEFAULT 0 CHECK (sold >= 0)',
  'ALTER TABLE sections ADD COLUMN IF NOT EXISTS next_expiry timestamptz',
  'ALTER TABLE sections ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0',
  // sections from before holds: every seat not remaining was sold
  'UPDATE sections SET sold = capacity - remaining - held WHERE remaining + held + sold <> capacity',
  `DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'sections_seats') THEN
      ALTER TABLE sections ADD CONSTRAINT sections_seats CHECK (remaining + held + sold = capacity);
    END IF;
  END $$`,
  'CREATE INDEX IF NOT EXISTS sections_event ON sections (event_id, position)',
  'CREATE INDEX IF NOT EXISTS sections_next_expiry ON sections (next_expiry) WHERE next_expiry IS NOT NULL',

  `CREATE TABLE IF NOT EXISTS bookings (
    id              text PRIMARY KEY,
    event_id        text NOT NULL,
    -- no foreign key: a booking is only ever inserted by the statement that updates its section's row
    -- (lib/store/sql/sql-store.ts, guarded), and sections are never deleted; the key's check was a query
    -- per inserted booking
    section_id      text NOT NULL,
    user_id         text NOT NULL,
    qty             int NOT NULL CHECK (qty > 0),
    unit_price      numeric(12, 2) NOT NULL,
    amount          numeric(14, 2) NOT NULL,
    status          text NOT NULL CONSTRAINT bookings_status_check ${BOOKING_STATUS_CHECK},
    idempotency_key text,
    request_hash    text,
    created_at      timestamptz NOT NULL,
    cancelled_at    timestamptz,
    -- the event's owner, copied when booked: an organizer's list is one index range
    event_owner     text NOT NULL DEFAULT '',
    expires_at      timestamptz,
    confirmed_at    timestamptz,
    payment_ref     text
  )`,
  'ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_section_id_fkey',
  "ALTER TABLE bookings ADD COLUMN IF NOT EXISTS event_owner text NOT NULL DEFAULT ''",
  'ALTER TABLE bookings ADD COLUMN IF NOT EXISTS expires_at timestamptz',
  'ALTER TABLE bookings ADD COLUMN IF NOT EXISTS confirmed_at timestamptz',
  'ALTER TABLE bookings ADD COLUMN IF NOT EXISTS payment_ref text',
  // tables from before holds allow only confirmed and cancelled
  `DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'bookings_status_check' AND pg_get_constraintdef(oid) LIKE '%expired%') THEN
      ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_status_check;
      ALTER TABLE bookings ADD CONSTRAINT bookings_status_check ${BOOKING_STATUS_CHECK};
    END IF;
  END $$`,
  'CREATE INDEX IF NOT EXISTS bookings_event ON bookings (event_id, created_at DESC, id DESC)',
  'CREATE INDEX IF NOT EXISTS bookings_user ON bookings (user_id, created_at DESC, id DESC)',
  // one user's bookings in one event: the user's index range, filtered by event (a user has few bookings);
  // an index of its own cost every booking written an entry
  'DROP INDEX IF EXISTS bookings_event_user',
  'CREATE INDEX IF NOT EXISTS bookings_section ON bookings (section_id, created_at DESC, id DESC)',
  'CREATE INDEX IF NOT EXISTS bookings_event_owner ON bookings (event_owner, created_at DESC, id DESC)',
  // unique where set: the bookings made without a key (most) cost no entry
  'CREATE UNIQUE INDEX IF NOT EXISTS bookings_idempotency_key ON bookings (idempotency_key) WHERE idempotency_key IS NOT NULL',
  'ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_idempotency_key_key',
  "CREATE INDEX IF NOT EXISTS bookings_held ON bookings (section_id, expires_at) WHERE status = 'held'",

  // a batch's write refused as a whole: raised from inside the one statement, so none of it stays, in a
  // transaction or not; serialization_failure, which every caller retries
  `CREATE OR REPLACE FUNCTION booking_batch_guard(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN
    IF NOT ok THEN
      RAISE EXCEPTION 'the guarded write refused the batch' USING ERRCODE = '40001';
    END IF;
    RETURN ok;
  END $$`,

  // seats each user holds plus has confirmed in an event with maxPerUser: the guard of the cap
  `CREATE TABLE IF NOT EXISTS event_user_seats (
    event_id text NOT NULL,
    user_id  text NOT NULL,
    seats    int NOT NULL CHECK (seats >= 0),
    PRIMARY KEY (event_id, user_id)
  )`,

  // The outbox, written by each change's own statement or transaction: one row per change of an event
  // or a section (its type and data), one row per section batch for its bookings' changes (each
  // booking's id and the status it reached; the feed reads each booking back as it was then). A batch's
  // row stays in its page, uncompressed, up to 8160 bytes (toast_tuple_target): about 300 bookings. No primary
  // key: the feed's index is the only one a write pays for. The feed reads in (xid, id) order and only
  // below the oldest transaction still running (pg_snapshot_xmin), so a record numbered before another
  // but committed after it is never passed over (lib/store/sql/change-feed.ts).
  `CREATE TABLE IF NOT EXISTS changes (
    id          bigserial,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event_id    text NOT NULL,
    -- the event's organizer ('' when none): an organizer reads only its events' changes
    event_owner text NOT NULL DEFAULT '',
    -- a change of an event or a section; NULL on a batch's bookings row
    type        text,
    -- json, not jsonb: written far more often than read, and read whole
    data        json,
    -- a batch's bookings row: its section, and each booking changed with the status it reached, in the
    -- batch's order, packed a few bytes each (lib/domain/changes.ts: packBookings)
    section_id  text,
    bookings    text,
    statuses    text,
    CHECK ((type IS NULL) = (bookings IS NOT NULL))
  ) WITH (toast_tuple_target = 8160)`,
  'CREATE INDEX IF NOT EXISTS changes_feed ON changes (xid, id)',

  // webhook endpoints, each with its place in the feed and its deliverer's lease
  `CREATE TABLE IF NOT EXISTS webhooks (
    id              text PRIMARY KEY,
    owner_id        text NOT NULL,
    url             text NOT NULL,
    types           text[] NOT NULL,
    secret          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    cursor_xid      xid8 NOT NULL,
    cursor_id       int8 NOT NULL,
    -- within a bookings row: how many of its bookings were passed
    cursor_n        int NOT NULL DEFAULT 0,
    failures        int NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error      text,
    delivered       int8 NOT NULL DEFAULT 0,
    disabled        boolean NOT NULL DEFAULT false,
    disabled_reason text,
    lease_owner     text,
    lease_until     timestamptz
  )`,
  'CREATE INDEX IF NOT EXISTS webhooks_owner ON webhooks (owner_id, created_at, id)',

  ...WAITLIST_SCHEMA
]
