// Replays journals, in the order given, into one flow table; loss and an unclean end are warnings.
import { openJournal } from '../journal/reader.js';
import { type CauseCount, type Coverage, coverageOf, lossWarning } from './coverage.js';
import { type Collapse, FlowTable } from './flows.js';
import { isWindowed, NO_WINDOW, type TimeWindow } from './slice.js';

/** What a report says about each journal it read. */
export interface JournalSummary {
  path: string;
  host: string;
  kernel: string;
  netns: string;
  /** Recording start and stop in µs since the epoch; stop is null without a trailer. */
  start: number;
  stop: number | null;
  /** Events read from the journal (including skipped ones). */
  events: number;
  /** The journal ended with its trailer: the recording ended cleanly. */
  complete: boolean;
  /** Bytes after the last complete frame that were not read (a torn tail), 0 if none. */
  ignoredBytes: number;
  /** What the recording covers and where it falls short. */
  coverage: Coverage;
}

export interface AnalyzeOptions {
  collapse?: Collapse;
  /** Only events whose time is inside it reach the table (--since, --until); default: all. */
  window?: TimeWindow;
  /** Receives each warning (one line, no prefix); default: warnings are dropped. */
  warn?: (message: string) => void;
}

export interface Analysis {
  table: FlowTable;
  journals: JournalSummary[];
}

/** Reads every journal into one table (the union of their flows). */
export function analyzeJournals(paths: readonly string[], opts: AnalyzeOptions = {}): Analysis {
  const table = new FlowTable(opts.collapse === undefined ? {} : { collapse: opts.collapse });
  const warn = opts.warn ?? (() => {});
  const window = opts.window ?? NO_WINDOW;
  const journals = paths.map((path) => replayOne(path, table, warn, window));
  return { table, journals };
}

function replayOne(
  path: string,
  table: FlowTable,
  warn: (m: string) => void,
  window: TimeWindow,
): JournalSummary {
  // openJournal's errors already name the path and say what to do.
  const reader = openJournal(path);
  try {
    // No prototype: a cause read from the file may be `__proto__`.
    const byCause: { [cause: string]: CauseCount } = Object.create(null);
    let inside = 0;
    const host = table.hostId(reader.header.host);
    for (const item of reader.columns()) {
      if (item.kind === 'events') {
        inside += table.addColumns(item.columns, {
          host,
          since: window.since,
          until: window.until,
        });
        continue;
      }
      const { cause, lost } = item.gap;
      const c = byCause[cause] ?? { gaps: 0, lost: 0 };
      c.gaps++;
      c.lost += lost;
      byCause[cause] = c;
    }
    const { header, trailer, tail, counts } = reader;
    const coverage = coverageOf({ header, trailer, tail, counts, byCause });
    if (isWindowed(window)) {
      coverage.window = { ...window, inside, outside: counts.events - inside };
    }
    if (tail !== undefined) {
      warn(`${path}: ignored ${tail.ignoredBytes} trailing bytes (recording did not end cleanly)`);
    } else if (trailer === undefined) {
      warn(`${path}: no trailer (recording did not end cleanly); showing the events it holds`);
    }
    // The report says it too, but a report written with -o is not what the user is looking at.
    const loss = lossWarning(coverage);
    if (loss !== undefined) warn(`${path}: ${loss}`);
    return {
      path,
      host: header.host,
      kernel: header.kernel,
      netns: header.netns,
      start: header.start,
      stop: trailer?.stop ?? null,
      events: counts.events,
      complete: trailer !== undefined,
      ignoredBytes: tail?.ignoredBytes ?? 0,
      coverage,
    };
  } finally {
    reader.close();
  }
}
