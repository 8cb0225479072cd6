import type { SectionBatchResult } from '../../lib/store/section-batch.ts'
import type { SectionOp } from '../../lib/domain/section-ops.ts'
import type { Store } from '../../lib/store/store.ts'

/** A batch of one section's operations, as the batcher sends it when only that section has work. */
export async function sectionBatch (store: Store, eventId: string, sectionId: string, ops: readonly SectionOp[]): Promise<SectionBatchResult> {
  const [result] = await store.sectionsBatch([{ eventId, sectionId, ops }])
  return result
}

/** Store-level operations act for a principal that may do anything: access is the booking service's (test/integration). */
export const granted = (): 'granted' => 'granted'
