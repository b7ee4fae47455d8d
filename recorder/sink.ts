// Where a recording's decoded events go: one journal frame per batch, then the live flow table.
import type { FlowTable } from '../analyzer/flows.js';
import type { CtEvent } from '../journal/event.js';
import type { EventCounts } from '../journal/format.js';
import type { JournalWriter } from '../journal/writer.js';

const TYPE_NAMES = ['', 'new', 'update', 'destroy', 'snapshot'] as const;

/**
 * Live mode and replay must agree, so the live table is fed exactly what reached the journal:
 * a batch the writer refused (full disk) never enters the table either.
 */
export class RecordingSink {
  readonly byType: EventCounts = { new: 0, update: 0, destroy: 0, snapshot: 0 };
  events = 0;

  constructor(
    private readonly writer: JournalWriter,
    readonly table: FlowTable,
  ) {}

  accept(batch: readonly CtEvent[]): void {
    if (batch.length === 0) return;
    this.writer.append(batch);
    for (const ev of batch) {
      this.byType[TYPE_NAMES[ev.type] ?? 'update']++;
      this.table.add(ev);
    }
    this.events += batch.length;
  }
}
