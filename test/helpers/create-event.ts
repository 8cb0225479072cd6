/** An event with sections, created through POST /api/events as any client would. */
import type { Event, Section } from '../../lib/api/schemas.ts'
import type { ApiClient } from './http-client.ts'

/** Events and sections as the API answers them: the contract's own types. */
export type SectionView = Section
export type EventView = Event

export interface EventOptions {
  name?: string
  /** one price for every section, or one per section */
  price?: number | number[]
  /** default S0, S1, ... */
  sectionNames?: string[]
  headers?: Record<string, string>
  /** the event's hold length, in seconds */
  holdSeconds?: number
  /** the event's cap of seats per user */
  maxPerUser?: number
  /** how long the event's waiting-list offers last, in seconds */
  waitlistOfferSeconds?: number
}

export interface CreatedEvent {
  /** the answer's status: always 201 (anything else throws) */
  status: number
  eventId: string
  /** the first section's id */
  sectionId: string
  sectionIds: string[]
  event: EventView
}

export async function createEvent (client: ApiClient, capacities: number[], options: EventOptions = {}): Promise<CreatedEvent> {
  const { name = 'Test event', price = 10, sectionNames, headers, holdSeconds, maxPerUser, waitlistOfferSeconds } = options
  const sections = capacities.map((capacity, i) => ({
    name: sectionNames?.[i] ?? `S${i}`,
    price: Array.isArray(price) ? price[i] : price,
    capacity
  }))
  const rules = {
    ...(holdSeconds === undefined ? {} : { holdSeconds }),
    ...(maxPerUser === undefined ? {} : { maxPerUser }),
    ...(waitlistOfferSeconds === undefined ? {} : { waitlistOfferSeconds })
  }
  const res = await client.request<EventView>('POST', '/api/events', { name, sections, ...rules }, headers)
  const event = res.status === 201 ? res.body.data : undefined
  if (event === undefined) throw new Error(`POST /api/events answered ${res.status}: ${res.text}`)
  const sectionIds = event.sections.map(s => s._id)
  return { status: res.status, eventId: event._id, sectionId: sectionIds[0], sectionIds, event }
}
