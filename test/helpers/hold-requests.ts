/** Holds as a client makes them: POST /bookings with "hold": true, then confirm; statuses are the caller's to judge. */
import type { ApiClient, ApiResponse } from './http-client.ts'

export interface HoldTarget { eventId: string, sectionId: string }

export async function hold (client: ApiClient, target: HoldTarget, qty: number, userId: string): Promise<ApiResponse> {
  return await client.request('POST', '/bookings', { ...target, qty, userId, hold: true })
}

export async function confirm (client: ApiClient, bookingId: string, paymentRef?: string): Promise<ApiResponse> {
  return await client.request('POST', `/api/bookings/${bookingId}/confirm`, paymentRef === undefined ? undefined : { paymentRef })
}

/** How many of the event's bookings have this status, through the list's total. */
export async function countWithStatus (client: ApiClient, eventId: string, status: string): Promise<number> {
  const res = await client.request('GET', `/bookings?eventId=${eventId}&status=${status}&limit=1`)
  if (res.status !== 200) throw new Error(`GET /bookings answered ${res.status}: ${res.text}`)
  return res.body.data.total
}
