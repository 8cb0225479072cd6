import { ObjectId } from 'bson'

/** A new id: ObjectId hex on every store, so ids look and validate the same everywhere. */
export function newId (): string {
  return new ObjectId().toHexString()
}

/**
 * A new booking's id: a new ObjectId (so ids still sort by creation), then its
 * section's id. Any instance can then send a confirm or a cancel straight to
 * the section's batch without reading the booking first; the batch reads it
 * under the section's lock, and finds it only in the section its id names.
 */
export function newBookingId (sectionId: string): string {
  return new ObjectId().toHexString() + sectionId
}

/** The section a booking id names, or null for an id from before ids named one (24 hex digits). */
export function sectionOfBookingId (id: string): string | null {
  return id.length === 48 ? id.slice(24) : null
}
