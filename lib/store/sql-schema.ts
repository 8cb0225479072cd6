/**
 * The relational schema, run by the PostgreSQL and embedded (PGlite) adapters
 * alike. Every statement is idempotent; the advisory lock keeps instances that
 * start at the same moment from racing on CREATE.
 */
export const MIGRATION_LOCK_ID = 7_214_311

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS events (
  id         text PRIMARY KEY,
  name       text NOT NULL,
  created_at timestamptz NOT NULL,
  -- the organizer's sub ('' for events made before owners existed: only admins manage them)
  owner_id   text NOT NULL DEFAULT ''
);
ALTER TABLE events ADD COLUMN IF NOT EXISTS owner_id text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS events_created ON events (created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS sections (
  id        text PRIMARY KEY,
  event_id  text NOT NULL REFERENCES events (id),
  position  int NOT NULL,
  name      text NOT NULL,
  price     numeric(12, 2) NOT NULL,
  capacity  int NOT NULL CHECK (capacity > 0),
  -- the last line of defence: no code path can make remaining negative
  remaining int NOT NULL CHECK (remaining >= 0 AND remaining <= capacity),
  -- booking rows of the section, any status, kept by the booking transaction:
  -- list totals by event or section without counting 100,000s of rows
  bookings  int NOT NULL DEFAULT 0 CHECK (bookings >= 0)
);
CREATE INDEX IF NOT EXISTS sections_event ON sections (event_id, position);

CREATE TABLE IF NOT EXISTS bookings (
  id              text PRIMARY KEY,
  event_id        text NOT NULL,
  section_id      text NOT NULL REFERENCES sections (id),
  user_id         text NOT NULL,
  qty             int NOT NULL CHECK (qty > 0),
  unit_price      numeric(12, 2) NOT NULL,
  amount          numeric(14, 2) NOT NULL,
  status          text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
  idempotency_key text UNIQUE,
  request_hash    text,
  created_at      timestamptz NOT NULL,
  cancelled_at    timestamptz,
  -- the event's owner, copied when booked: an organizer's list is one index range
  event_owner     text NOT NULL DEFAULT ''
);
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS event_owner text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS bookings_event ON bookings (event_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS bookings_user ON bookings (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS bookings_event_user ON bookings (event_id, user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS bookings_section ON bookings (section_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS bookings_event_owner ON bookings (event_owner, created_at DESC, id DESC);
`
