// Where a recording's decoded events go: one journal frame per batch, then the live flow table
// (kept only in live mode: it is the recorder's largest CPU cost after decoding).
import type { FlowTable } from '../analyzer/core/flows.js';
import type { CtEvent } from '../journal/event.js';
import type { JournalWriter } from '../journal/writer.js';

/**
 * Live mode and replay must agree, so the live table is fed exactly what reached the journal:
 * a batch the writer refused (full disk) never enters the table either. What was recorded is
 * counted once, by the writer.
 */
export class RecordingSink {
  constructor(
    readonly writer: JournalWriter,
    readonly table?: FlowTable,
  ) {}

  accept(batch: readonly CtEvent[]): void {
    if (batch.length === 0) return;
    this.writer.append(batch);
    if (this.table !== undefined) for (const ev of batch) this.table.add(ev);
  }
}
