import { ObjectId } from 'bson'

/** A new id: ObjectId hex on every store, so ids look and validate the same everywhere. */
export function newId (): string {
  return new ObjectId().toHexString()
}
