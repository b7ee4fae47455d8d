// Replays journals, in the order given, into one flow table; loss and an unclean end are warnings.
import {
  type ColumnsItem,
  type IdleItem,
  type JournalReader,
  openJournal,
} from '../journal/reader.js';
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

/** How far a replay has got, for a progress display. */
export interface ReplayProgress {
  path: string;
  /** Journals done before this one, and how many there are. */
  index: number;
  count: number;
  /** Bytes of this journal read so far, and its size. */
  bytes: number;
  total: number;
  /** Events read so far, all journals together. */
  events: number;
}

export interface AnalyzeOptions {
  collapse?: Collapse;
  /** Only events whose time is inside it reach the table (--since, --until); default: all. */
  window?: TimeWindow;
  /** Receives each warning (one line, no prefix); default: warnings are dropped. */
  warn?: (message: string) => void;
  /** Called after every frame read; keep it cheap (it runs about once per 1,000 events). */
  progress?: (p: ReplayProgress) => void;
}

export interface Analysis {
  table: FlowTable;
  journals: JournalSummary[];
}

/** Reads every journal into one table (the union of their flows). */
export function analyzeJournals(paths: readonly string[], opts: AnalyzeOptions = {}): Analysis {
  const table = new FlowTable(opts.collapse === undefined ? {} : { collapse: opts.collapse });
  const warn = opts.warn ?? (() => {});
  let before = 0;
  const journals = paths.map((path, index) => {
    // openJournal's errors already name the path and say what to do.
    const replay = new JournalReplay(openJournal(path), table, opts.window ?? NO_WINDOW);
    try {
      const progress = opts.progress;
      const tick =
        progress === undefined
          ? undefined
          : (bytes: number, total: number, events: number) =>
              progress({ path, index, count: paths.length, bytes, total, events: before + events });
      replay.advance(false, tick);
      before += replay.events;
      const summary = replay.summary();
      warnAbout(summary, warn);
      return summary;
    } finally {
      replay.close();
    }
  });
  return { table, journals };
}

/** The warnings a journal's summary calls for, on stderr as well as in the report. */
export function warnAbout(j: JournalSummary, warn: (m: string) => void): void {
  if (j.ignoredBytes > 0) {
    warn(`${j.path}: ignored ${j.ignoredBytes} trailing bytes (recording did not end cleanly)`);
  } else if (!j.complete) {
    warn(`${j.path}: no trailer (recording did not end cleanly); showing the events it holds`);
  }
  // The report says it too, but a report written with -o is not what the user is looking at.
  const loss = lossWarning(j.coverage);
  if (loss !== undefined) warn(`${j.path}: ${loss}`);
}

/**
 * One journal being read into a table: all at once, or (follow) as far as it goes now and
 * again later, with a summary of what has been read at any point.
 */
export class JournalReplay {
  readonly reader: JournalReader;
  readonly #table: FlowTable;
  readonly #window: TimeWindow;
  readonly #host: number;
  // No prototype: a cause read from the file may be `__proto__`.
  readonly #byCause: { [cause: string]: CauseCount } = Object.create(null);
  #inside = 0;
  #items: Generator<ColumnsItem | IdleItem> | undefined;
  #ended = false;

  constructor(reader: JournalReader, table: FlowTable, window: TimeWindow) {
    this.reader = reader;
    this.#table = table;
    this.#window = window;
    this.#host = table.hostId(reader.header.host);
  }

  /** Events read so far. */
  get events(): number {
    return this.reader.counts.events;
  }

  /** The journal has been read to its end (trailer, or end of file when not following). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Reads on: to the end, or (follow) until there is nothing more to read for now. Returns
   * true when the journal ended.
   */
  advance(follow: boolean, tick?: (bytes: number, total: number, events: number) => void): boolean {
    if (this.#ended) return true;
    this.#items ??= follow ? this.reader.follow() : this.reader.columns();
    const { since, until } = this.#window;
    let events = 0;
    for (;;) {
      const next = this.#items.next();
      if (next.done === true) {
        this.#ended = true;
        return true;
      }
      const item = next.value;
      if (item.kind === 'idle') return false;
      if (item.kind === 'events') {
        const cols = item.columns;
        this.#inside += this.#table.addColumns(cols, { host: this.#host, since, until });
        events += cols.n;
        tick?.(this.reader.offset, this.reader.size, events);
        continue;
      }
      const { cause, lost } = item.gap;
      const c = this.#byCause[cause] ?? { gaps: 0, lost: 0 };
      c.gaps++;
      c.lost += lost;
      this.#byCause[cause] = c;
    }
  }

  /** What has been read so far; `following` leaves out the warning for a missing trailer. */
  summary(following = false): JournalSummary {
    const { header, trailer, tail, counts, path } = this.reader;
    const byCause = Object.assign(Object.create(null), this.#byCause);
    const coverage = coverageOf({ header, trailer, tail, counts, byCause, following });
    if (isWindowed(this.#window)) {
      coverage.window = {
        ...this.#window,
        inside: this.#inside,
        outside: counts.events - this.#inside,
      };
    }
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
  }

  close(): void {
    this.reader.close();
  }
}
