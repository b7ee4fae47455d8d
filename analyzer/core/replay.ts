// Replays journals, in the order given, into one flow table; loss and an unclean end are warnings.

import type { JournalChain } from '../../journal/format.js';
import { columnsInWorker, type JournalEnd, parallelAvailable } from '../../journal/parallel.js';
import {
  type ColumnsItem,
  type IdleItem,
  type JournalReader,
  openJournal,
} from '../../journal/reader.js';
import {
  type CauseCount,
  type Coverage,
  chainWarnings,
  coverageOf,
  judgeRunLength,
  lossWarning,
} from './coverage.js';
import { type Collapse, collapseFor, FlowTable } from './flows.js';
import { HostNetwork } from './host-network.js';
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
  /**
   * Each host's network (its addresses and routes, the union over its journals' sets), by the
   * host name as Flow.hosts gives it. Not in JournalSummary: reports serialize that as is.
   */
  networks: Map<string, HostNetwork>;
}

/** Reads every journal into one table (the union of their flows), on this thread. */
export function analyzeJournals(paths: readonly string[], opts: AnalyzeOptions = {}): Analysis {
  const run = new Analyzing(paths, opts);
  const journals = paths.map((path, index) => {
    // openJournal's errors already name the path and say what to do.
    const replay = run.open(path);
    try {
      replay.advance(false, run.tick(index));
      return run.done(replay);
    } finally {
      replay.close();
    }
  });
  run.finish(journals);
  return { table: run.table, journals, networks: run.networks };
}

/**
 * Journals holding fewer events than about this many bytes of format 1 (~200,000 events) are
 * read on one thread: a worker costs ~0.1 s to start. Format 2 holds the same events in about
 * a quarter of the bytes (docs/bench.md, "Journal format 2"), so its threshold is a quarter.
 */
const PARALLEL_MIN_BYTES = 8 * 1024 * 1024;
export const minBytesInWorker = (format: number): number =>
  format >= 2 ? PARALLEL_MIN_BYTES / 4 : PARALLEL_MIN_BYTES;

/**
 * analyzeJournals with each large journal read, checked and scanned by a worker thread while
 * this one builds the table (docs/bench.md): the same result, about twice as fast on two cores.
 * Where the worker is not available (run from TypeScript sources) it reads on this thread.
 */
export async function analyzeJournalsInParallel(
  paths: readonly string[],
  opts: AnalyzeOptions = {},
): Promise<Analysis> {
  const run = new Analyzing(paths, opts);
  const journals: JournalSummary[] = [];
  for (const [index, path] of paths.entries()) {
    const replay = run.open(path);
    try {
      const { reader } = replay;
      if (parallelAvailable && reader.size >= minBytesInWorker(reader.header.format)) {
        await replay.readInWorker(run.tick(index));
      } else {
        replay.advance(false, run.tick(index));
      }
      journals.push(run.done(replay));
    } finally {
      replay.close();
    }
  }
  run.finish(journals);
  return { table: run.table, journals, networks: run.networks };
}

/** What the two analyze functions share: the table, warnings, progress across journals. */
class Analyzing {
  readonly table: FlowTable;
  readonly networks = new Map<string, HostNetwork>();
  readonly #paths: readonly string[];
  readonly #opts: AnalyzeOptions;
  #before = 0;
  /** Each journal's place in a rotated run, in the order done() saw them. */
  readonly #chains: (JournalChain | undefined)[] = [];

  constructor(paths: readonly string[], opts: AnalyzeOptions) {
    this.#paths = paths;
    this.#opts = opts;
    this.table = new FlowTable(opts.collapse === undefined ? {} : { collapse: opts.collapse });
  }

  open(path: string): JournalReplay {
    return new JournalReplay(openJournal(path), this.table, this.#opts.window ?? NO_WINDOW);
  }

  tick(index: number): Tick | undefined {
    const progress = this.#opts.progress;
    if (progress === undefined) return undefined;
    const path = this.#paths[index] as string;
    const count = this.#paths.length;
    return (bytes, total, events) =>
      progress({ path, index, count, bytes, total, events: this.#before + events });
  }

  done(replay: JournalReplay): JournalSummary {
    this.#before += replay.events;
    const summary = replay.summary();
    const warn = this.#opts.warn ?? (() => {});
    if (replay.collapseNote !== undefined) warn(replay.collapseNote);
    warnAbout(summary, warn);
    this.#chains.push(replay.reader.header.chain);
    const host = replay.reader.header.host;
    const network = this.networks.get(host) ?? new HostNetwork();
    this.networks.set(host, network);
    for (const set of replay.addressSets) network.addAddresses(set.addresses);
    for (const set of replay.routeSets) network.addRoutes(set.routes);
    return summary;
  }

  finish(journals: readonly JournalSummary[]): void {
    judgeRuns(journals, this.#chains, this.#opts.warn);
  }
}

/**
 * After the last journal (of an analysis, or of a report while following): a rotated run's
 * length and holes are known only once all its journals given were read. Adds those warnings to
 * the journals' coverage (`chains[i]` is `journals[i]`'s header chain) and each hole to warn.
 */
export function judgeRuns(
  journals: readonly JournalSummary[],
  chains: readonly (JournalChain | undefined)[],
  warn: (message: string) => void = () => {},
): void {
  judgeRunLength(journals.map((j, i) => ({ chain: chains[i], coverage: j.coverage })));
  const places = journals.map((j, i) => ({ path: j.path, chain: chains[i] }));
  chainWarnings(places).forEach((w, i) => {
    const j = journals[i];
    if (w === undefined || j === undefined) return;
    j.coverage.warnings.push(w);
    warn(`${j.path}: ${w}`);
  });
}

/** Progress of one journal: bytes read of its size, events read. */
type Tick = (bytes: number, total: number, events: number) => void;

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
  /**
   * Address sets already in the table: a summary adds only the ones read since, and of those
   * only addresses not added before (the reader gives a repeated address as the same object).
   */
  #setsAdded = 0;
  readonly #addressesAdded = new Set<object>();
  #items: Generator<ColumnsItem | IdleItem> | undefined;
  #ended = false;
  /** Set when a worker thread read the journal: what the reader would know at its end. */
  #end: JournalEnd | undefined;

  /** This journal's collapsing: the table's, with 'ephemeral' taken from its header. */
  readonly #collapse: Collapse;
  /** Set when 'ephemeral' found no port range in the header and used the default. */
  readonly collapseNote: string | undefined;

  constructor(reader: JournalReader, table: FlowTable, window: TimeWindow) {
    this.reader = reader;
    this.#table = table;
    this.#window = window;
    this.#host = table.hostId(reader.header.host);
    const addresses = reader.header.addresses;
    if (addresses !== undefined) table.addHostAddresses(this.#host, addresses);
    const { mode, recorded } = collapseFor(
      table.collapse,
      reader.header.sysctls.ip_local_port_range,
    );
    this.#collapse = mode;
    this.collapseNote = recorded
      ? undefined
      : `${reader.path} does not record the host's ip_local_port_range: --collapse ephemeral used ${formatRange(mode)}`;
  }

  /** Events read so far. */
  get events(): number {
    return this.#state().counts.events;
  }

  #state(): JournalEnd {
    const r = this.reader;
    return (
      this.#end ?? {
        trailer: r.trailer,
        tail: r.tail,
        counts: r.counts,
        sha256: r.sha256,
        addressSets: r.addressSets,
        routeSets: r.routeSets,
      }
    );
  }

  /** The host's address sets read so far (the header's, then each change). */
  get addressSets(): JournalEnd['addressSets'] {
    return this.#state().addressSets;
  }

  /** The host's route sets read so far (the header's, then each change). */
  get routeSets(): JournalEnd['routeSets'] {
    return this.#state().routeSets;
  }

  /** The journal has been read to its end (trailer, or end of file when not following). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Reads on: to the end, or (follow) until there is nothing more to read for now. Returns
   * true when the journal ended.
   */
  advance(follow: boolean, tick?: Tick): boolean {
    if (this.#ended) return true;
    this.#items ??= follow ? this.reader.follow() : this.reader.columns();
    let events = 0;
    for (;;) {
      const next = this.#items.next();
      if (next.done === true) {
        this.#ended = true;
        return true;
      }
      const item = next.value;
      if (item.kind === 'idle') return false;
      events += this.#apply(item);
      tick?.(this.reader.offset, this.reader.size, events);
    }
  }

  /** The whole journal, its frames read, checked and scanned by a worker thread. */
  async readInWorker(tick?: Tick): Promise<void> {
    if (this.#ended || this.#items !== undefined) throw new Error('replay: already reading');
    const progress: { offset: number; end?: JournalEnd } = { offset: 0 };
    let events = 0;
    for await (const item of columnsInWorker(this.reader, progress)) {
      events += this.#apply(item);
      tick?.(progress.offset, this.reader.size, events);
    }
    this.#end = progress.end;
    this.#ended = true;
  }

  /** One item into the table or the gap counts; returns the events it held. */
  #apply(item: ColumnsItem): number {
    if (item.kind === 'events') {
      const cols = item.columns;
      const { since, until } = this.#window;
      const opts = { host: this.#host, since, until, collapse: this.#collapse };
      this.#inside += this.#table.addColumns(cols, opts);
      return cols.n;
    }
    const { cause, lost } = item.gap;
    const c = this.#byCause[cause] ?? { gaps: 0, lost: 0 };
    c.gaps++;
    c.lost += lost;
    this.#byCause[cause] = c;
    return 0;
  }

  /** What has been read so far; `following` leaves out the warning for a missing trailer. */
  summary(following = false): JournalSummary {
    const { header, path } = this.reader;
    const { trailer, tail, counts, addressSets } = this.#state();
    // The host's addresses as read so far (header and changes) decide the flows' direction.
    for (; this.#setsAdded < addressSets.length; this.#setsAdded++) {
      const set = addressSets[this.#setsAdded] as (typeof addressSets)[number];
      const added = this.#addressesAdded;
      const fresh = [];
      for (const a of set.addresses) {
        if (added.has(a)) continue;
        added.add(a);
        fresh.push(a);
      }
      this.#table.addHostAddresses(this.#host, fresh);
    }
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

function formatRange(mode: Collapse): string {
  return mode.kind === 'range' || mode.kind === 'ephemeral' ? `${mode.lo}-${mode.hi}` : mode.kind;
}
