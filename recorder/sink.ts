// Where a recording's decoded events go: held into events frames of up to HOLD_EVENTS, then, once
// written, the live flow table (kept only in live mode: it is the recorder's largest CPU cost
// after decoding).
import { type Collapse, collapseFor, FlowTable } from '../analyzer/core/flows.js';
import type { CtEvent } from '../journal/event.js';
import type { JournalHeaderInput } from '../journal/format.js';
import { JournalWriter, type WriterOptions } from '../journal/writer.js';

/**
 * Events held before they are written as one frame; the flush timer (--flush-interval, already
 * what a crash may cost) writes fewer. A quiet host's frames of one native batch (a few events)
 * compress 2.5x in format 2, frames of up to 1 s 4.8-5.6x (docs/bench.md); a flood of 200,000
 * events/s still writes a frame every 20 ms.
 */
export const HOLD_EVENTS = 4096;

/**
 * Live mode and replay must agree, so the live table is fed exactly what reached the journal:
 * each events frame once the writer has written it (`written`), never at accept, so a batch
 * held and then refused (full disk) never enters the table either. What was recorded is
 * counted once, by the writer.
 */
export class RecordingSink {
  #writer: JournalWriter | undefined;

  constructor(readonly table?: FlowTable) {}

  /**
   * Creates the next journal (JournalWriter.create, holding HOLD_EVENTS and feeding the table),
   * the one accept() appends to from now on. The previous one must be closed by then: its held
   * events belong to it.
   */
  open(
    path: string,
    header: JournalHeaderInput,
    opts: Omit<WriterOptions, 'holdEvents' | 'written'> = {},
  ): JournalWriter {
    const table = this.table;
    this.#writer = JournalWriter.create(path, header, {
      ...opts,
      holdEvents: HOLD_EVENTS,
      ...(table === undefined
        ? {}
        : {
            written: (events: readonly CtEvent[]) => {
              for (const ev of events) table.add(ev);
            },
          }),
    });
    return this.#writer;
  }

  /** The journal accept() appends to. */
  get writer(): JournalWriter {
    if (this.#writer === undefined) throw new Error('recording sink: no journal open');
    return this.#writer;
  }

  /** The writer keeps the events (not the array): decodeRecords makes new ones per batch. */
  accept(batch: readonly CtEvent[]): void {
    if (batch.length === 0) return;
    this.writer.append(batch);
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
