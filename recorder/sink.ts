// Where a recording's decoded events go: one journal frame per batch, then the live flow table
// (kept only in live mode: it is the recorder's largest CPU cost after decoding).
import { type Collapse, collapseFor, FlowTable } from '../analyzer/core/flows.js';
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

/**
 * The live table of a recording under `collapse`: 'ephemeral' is this host's own
 * ip_local_port_range, as ct-analyze reads it from the journal header, so the two agree.
 */
export function liveTable(
  collapse: Collapse,
  portRange: readonly [number, number] | null,
): FlowTable {
  return new FlowTable({ collapse: collapseFor(collapse, portRange).mode });
}
