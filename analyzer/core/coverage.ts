// What a journal covers and where it falls short: time range, events, loss, and what to do about it.
import { printable } from '../../common/printable.js';
import type {
  EventCounts,
  JournalChain,
  JournalHeader,
  JournalTrailer,
} from '../../journal/format.js';
import type { JournalCounts } from '../../journal/reader.js';
import { formatCidr, parseCidr } from './prefix.js';

/** Gaps and lost events of one cause. */
export interface CauseCount {
  gaps: number;
  lost: number;
}

/** The `coverage` object of a journal in every report (schema in docs/rules.md). */
export interface Coverage {
  /** Recording start (header), µs since the epoch. */
  start: number;
  /** End of the covered time, µs: the trailer's stop, else the latest event, else the start. */
  end: number;
  endFrom: 'trailer' | 'last-event' | 'start';
  /** Events recorded, all types, and per type (snapshot: entries of table dumps). */
  events: number;
  byType: EventCounts;
  /** Events the gaps say were lost; a lower bound when lostKnown is false. */
  lost: number;
  lostKnown: boolean;
  gaps: number;
  /**
   * Entries the resync dumps left out because the journal already held them (the gaps'
   * `skipped`, once per dump): the journal has fewer snapshot events than the dumps returned.
   * Absent when none was (and for journals from before the count).
   */
  resyncSkipped?: number;
  /** Gaps and lost events per cause (`ENOBUFS`, `QUEUE`, …); a null-prototype object. */
  byCause: { [cause: string]: CauseCount };
  /** The journal ends with its trailer: the recording ended cleanly. */
  complete: boolean;
  /** Bytes of a torn tail that were not read, 0 if none. */
  ignoredBytes: number;
  /** net.netfilter.nf_conntrack_events when the recording started; null when not readable. */
  nfConntrackEvents: number | null;
  /** The recorder dumped the conntrack table at start (header option `snapshot`). */
  snapshotDumped: boolean;
  /** net.netfilter.nf_conntrack_timestamp and _acct when the recording started; null: unknown. */
  nfConntrackTimestamp: number | null;
  nfConntrackAcct: number | null;
  /** The recorder's event filters, as ct-record options (`-p tcp,udp`); empty: none. */
  filters: string[];
  /** The capture `ct-analyze import` made the journal from (`conntrack -E` text FILE); null: recorded. */
  importedFrom: string | null;
  /** Each weakness of the recording, and what to do about it (one line each). */
  warnings: string[];
  /** Only with --since/--until: the window (µs, inclusive, null: open) and the events in it. */
  window?: WindowCoverage;
}

/** The time window a report was sliced to, and how many of a journal's events fell inside. */
export interface WindowCoverage {
  since: number | null;
  until: number | null;
  /** Events whose time is inside the window: the only ones that reached the flow table. */
  inside: number;
  /** Events outside it, left out of the table. */
  outside: number;
}

export interface CoverageInput {
  header: JournalHeader;
  trailer: JournalTrailer | undefined;
  tail: { ignoredBytes: number } | undefined;
  counts: JournalCounts;
  byCause: { [cause: string]: CauseCount };
  /** The journal is being followed while ct-record writes it: no trailer yet is no fault. */
  following?: boolean;
}

/** The coverage of one journal that has been read to its end. */
export function coverageOf(j: CoverageInput): Coverage {
  const { header, trailer, counts } = j;
  const last = counts.lastEventTime;
  const endFrom = trailer !== undefined ? 'trailer' : last !== undefined ? 'last-event' : 'start';
  const c: Coverage = {
    start: header.start,
    end: trailer?.stop ?? last ?? header.start,
    endFrom,
    events: counts.events,
    byType: { ...counts.byType },
    lost: counts.lost,
    lostKnown: counts.gapsLostUnknown === 0,
    gaps: counts.gaps,
    // Only when a dump left something out: reports of every other journal stay as they were.
    ...((counts.resyncSkipped ?? 0) > 0 ? { resyncSkipped: counts.resyncSkipped } : {}),
    byCause: j.byCause,
    complete: trailer !== undefined,
    ignoredBytes: j.tail?.ignoredBytes ?? 0,
    nfConntrackEvents: header.sysctls.nf_conntrack_events,
    // A rotated run dumps the table once, at the start of its first journal.
    snapshotDumped: header.options.snapshot === true && !continues(header.chain),
    nfConntrackTimestamp: header.sysctls.nf_conntrack_timestamp,
    nfConntrackAcct: header.sysctls.nf_conntrack_acct,
    filters: filtersOf(header.options),
    importedFrom: importedFromOf(header.options),
    warnings: [],
  };
  c.warnings = warningsOf(c, j.following === true, continues(header.chain));
  return c;
}

/** Journal 2 or later of a rotated run: what it lacks is in the journals before it. */
function continues(chain: JournalChain | undefined): boolean {
  return chain !== undefined && chain.sequence > 1;
}

/**
 * The warning each journal of a rotated run calls for when the journal before it in its run is
 * not among those analyzed (a hole, or a run analyzed from its middle); undefined where none.
 */
export function chainWarnings(
  journals: readonly { path: string; chain: JournalChain | undefined }[],
): (string | undefined)[] {
  const runOf = (chain: JournalChain) => Buffer.from(chain.run).toString('hex');
  const present = new Map<string, Set<number>>();
  for (const { chain } of journals) {
    if (chain === undefined) continue;
    const set = present.get(runOf(chain)) ?? new Set();
    set.add(chain.sequence);
    present.set(runOf(chain), set);
  }
  return journals.map(({ path, chain }) => {
    if (chain === undefined || chain.previous === null) return undefined;
    const have = present.get(runOf(chain)) ?? new Set();
    const to = chain.sequence - 1;
    if (have.has(to)) return undefined;
    let from = to;
    while (from > 1 && !have.has(from - 1)) from--;
    const which =
      from === to ? `journal ${to} (${printable(chain.previous.file)})` : `journals ${from}–${to}`;
    const older =
      from === 1 ? ', and flows older than the run (its table dump is in journal 1),' : '';
    const glob = runGlob(path);
    const advice = glob === undefined ? 'every journal of the run' : `them all: ct-analyze ${glob}`;
    return `journal ${chain.sequence} of run ${runOf(chain).slice(0, 8)} is analyzed without ${which} of that run: flows seen only in ${from === to ? 'it' : 'them'}${older} are missing; analyze ${advice}`;
  });
}

/** `dir/fw1-*.mpk` for `dir/fw1-000003.mpk`, as ct-record names a run; undefined for other names. */
function runGlob(path: string): string | undefined {
  const m = /^(.*)-\d{6,}(\.[^./]*)?$/.exec(path);
  return m === null ? undefined : `${m[1]}-*${m[2] ?? ''}`;
}

// Maps, not object literals: a cause read from a file may be `constructor` or `__proto__`.
const CAUSE_TEXT = new Map([
  ['ENOBUFS', 'kernel buffer overrun'],
  ['QUEUE', 'recorder queue full'],
]);

const CAUSE_ADVICE = new Map([
  ['ENOBUFS', 'record with a larger --buffer-size'],
  ['QUEUE', 'record to a faster disk or keep fewer events (-e, -p, --mark)'],
]);

/** The warning about lost events, or undefined when the journal has no gaps. */
export function lossWarning(c: Coverage): string | undefined {
  if (c.gaps === 0) return undefined;
  const causes = Object.keys(c.byCause).sort();
  const why = causes.map((k) => CAUSE_TEXT.get(k) ?? k).join(', ');
  const advice = new Set(causes.map((k) => CAUSE_ADVICE.get(k) ?? 'see ct-record’s messages'));
  return `${lostText(c.lost, c.lostKnown)} in ${count(c.gaps, 'gap')} (${why}): flows may be missing; ${[...advice].join('; ')}`;
}

/** Shorter than this, a recording misses services used daily (backups, updates, cron jobs). */
export const SHORT_RECORDING_US = 24 * 3600 * 1e6;
const SHORT_LEAD = 'the recording covers only ';

/** The warning for a recording that spans `us` µs, or undefined when it is long enough. */
export function shortWarning(us: number): string | undefined {
  if (us >= SHORT_RECORDING_US) return undefined;
  return `${SHORT_LEAD}${durationText(us)}: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall`;
}

/**
 * A rotated run is one recording: analyzed together, its journals are judged short once, by the
 * run's whole span, on its first journal read, instead of once each (168 warnings for a week of
 * hourly journals). Changes the coverages' warnings in place.
 */
export function judgeRunLength(
  journals: readonly { chain: JournalChain | undefined; coverage: Coverage }[],
): void {
  const runs = new Map<string, Coverage[]>();
  for (const { chain, coverage } of journals) {
    if (chain === undefined) continue;
    const run = Buffer.from(chain.run).toString('hex');
    runs.set(run, [...(runs.get(run) ?? []), coverage]);
  }
  for (const members of runs.values()) {
    if (members.length < 2) continue;
    const hadShort = members.some((c) => c.warnings.some((w) => w.startsWith(SHORT_LEAD)));
    if (!hadShort) continue;
    for (const c of members) c.warnings = c.warnings.filter((w) => !w.startsWith(SHORT_LEAD));
    const start = Math.min(...members.map((c) => c.start));
    const end = Math.max(...members.map((c) => c.end));
    const short = shortWarning(end - start);
    if (short !== undefined) {
      members[0]?.warnings.push(
        short.replace(SHORT_LEAD, `the rotated run (${members.length} journals) covers only `),
      );
    }
  }
}

function warningsOf(c: Coverage, following: boolean, continued: boolean): string[] {
  const out: string[] = [];
  const loss = lossWarning(c);
  if (loss !== undefined) out.push(loss);
  if (!c.complete && !following) {
    const torn = c.ignoredBytes > 0 ? `; ${count(c.ignoredBytes, 'torn byte')} ignored` : '';
    out.push(
      `the recording did not end cleanly (no trailer${torn}): flows after its last event are missing; stop ct-record with Ctrl-C or SIGTERM so it ends the journal`,
    );
  }
  if (c.nfConntrackEvents === 0) {
    out.push(
      'nf_conntrack_events=0: the kernel sent no events, only table snapshots were recorded; record with --enable-events (or set net.netfilter.nf_conntrack_events=1)',
    );
  } else if (c.nfConntrackEvents === 2 && !c.snapshotDumped && !continued) {
    out.push(
      'nf_conntrack_events=2 and no table dump at start: flows older than the recording were not seen (they send no events); record again without --no-snapshot, or with --enable-events',
    );
  }
  const tracked = c.byType.new + c.byType.update + c.byType.destroy + c.byType.snapshot;
  if (tracked === 0 && !following) {
    out.push(
      'no connection was tracked: either no traffic crossed the namespace, or conntrack is not active in it (a namespace tracks connections only once a rule needs conntrack); check with `ct-record --check` and record again with --enable-tracking (or a rule of your own that uses ct state)',
    );
  }
  const short = shortWarning(c.end - c.start);
  if (short !== undefined && !following) out.push(short);
  const off = [
    ...(c.nfConntrackTimestamp === 0 ? ['nf_conntrack_timestamp'] : []),
    ...(c.nfConntrackAcct === 0 ? ['nf_conntrack_acct'] : []),
  ];
  if (off.length > 0 && c.importedFrom === null) {
    const what = [
      ...(c.nfConntrackTimestamp === 0
        ? ['last-seen times are when events arrived (an ended flow is reported 10–40 s late)']
        : []),
      ...(c.nfConntrackAcct === 0 ? ['flows carry no packet or byte counts'] : []),
    ];
    out.push(
      `${off.map((k) => `${k}=0`).join(' and ')}: ${what.join(', and ')}; set ${off.map((k) => `net.netfilter.${k}=1`).join(' and ')} before recording`,
    );
  }
  return out;
}

/**
 * The recorder's event filters as the ct-record options that set them, from the header's
 * options (untrusted plain data: anything of an unexpected shape is left out).
 */
export function filtersOf(options: Record<string, unknown>): string[] {
  const out: string[] = [];
  const events = options.events;
  if (events !== null && typeof events === 'object' && !Array.isArray(events)) {
    const e = events as Record<string, unknown>;
    const kept = ['new', 'update', 'destroy'].filter((k) => e[k] === true);
    if (kept.length < 3) out.push(`-e ${kept.length === 0 ? 'none' : kept.join(',')}`);
  }
  // --events minimal (recorder/diet.ts): UPDATEs that changed no flow were left out.
  if (options.eventsMode === 'minimal') out.push('-e minimal');
  const f = options.filter;
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return out;
  const filter = f as Record<string, unknown>;
  const protos = filter.protos;
  if (Array.isArray(protos) && protos.every((p) => Number.isInteger(p))) {
    out.push(`-p ${protos.join(',')}`);
  }
  const mark = filter.mark as { value?: unknown; mask?: unknown } | null | undefined;
  if (mark !== null && typeof mark === 'object') {
    const { value, mask } = mark;
    if (Number.isInteger(value) && Number.isInteger(mask)) {
      out.push(`--mark 0x${(value as number).toString(16)}/0x${(mask as number).toString(16)}`);
    }
  }
  if (filter.noLoopback === true) out.push('--no-loopback');
  for (const key of ['src', 'dst'] as const) {
    const list = filter[key];
    if (!Array.isArray(list)) continue;
    for (const text of list) {
      // Printed as parsed again: a forged header's string never reaches a report as it is.
      const c = typeof text === 'string' ? parseCidr(text) : undefined;
      if (c !== undefined) out.push(`--${key} ${formatCidr(c)}`);
    }
  }
  return out;
}

/** `conntrack -E text capture.txt` for an imported journal; null for a recorded one. */
function importedFromOf(options: Record<string, unknown>): string | null {
  const from = options.importedFrom;
  if (from === null || typeof from !== 'object' || Array.isArray(from)) return null;
  const { tool, file } = from as Record<string, unknown>;
  return `${typeof tool === 'string' ? tool : 'conntrack'} text ${typeof file === 'string' ? file : '(unnamed)'}`;
}

/** One fact of a journal's coverage: a label and its text (untrusted text unescaped). */
export interface CoverageFact {
  label: string;
  text: string;
}

/** Where and how a journal was recorded, what it covers: the rows of a coverage block. */
export function coverageFacts(j: {
  path: string;
  host: string;
  kernel: string;
  netns: string;
  coverage: Coverage;
}): CoverageFact[] {
  const c = j.coverage;
  const facts: CoverageFact[] = [
    { label: 'journal', text: j.path },
    { label: 'host', text: j.host },
    { label: 'kernel', text: j.kernel },
    { label: 'netns', text: j.netns },
    { label: 'time', text: timeRangeText(c) },
    { label: 'coverage', text: countsText(c) },
    { label: 'settings', text: settingsText(c) },
  ];
  if (c.window !== undefined) facts.push({ label: 'window', text: windowText(c.window) });
  return facts;
}

/** `table dumped at start; filters: -p tcp; nf_conntrack_events=2, timestamp=0, acct=unknown` */
export function settingsText(c: Coverage): string {
  const sysctl = (v: number | null) => (v === null ? 'unknown' : String(v));
  const how =
    c.importedFrom !== null
      ? `imported from ${c.importedFrom}`
      : c.snapshotDumped
        ? 'table dumped at start'
        : 'no table dump at start';
  const filters = c.filters.length === 0 ? 'none' : c.filters.join(' ');
  return `${how}; filters: ${filters}; nf_conntrack_events=${sysctl(c.nfConntrackEvents)}, timestamp=${sysctl(c.nfConntrackTimestamp)}, acct=${sysctl(c.nfConntrackAcct)}`;
}

/** Coverages summed over several journals (for the combined line). */
export function combineCoverage(list: readonly Coverage[]): {
  events: number;
  byType: EventCounts;
  lost: number;
  lostKnown: boolean;
  gaps: number;
} {
  const sum = {
    events: 0,
    byType: { new: 0, update: 0, destroy: 0, snapshot: 0 },
    lost: 0,
    lostKnown: true,
    gaps: 0,
  };
  for (const c of list) {
    sum.events += c.events;
    for (const k of ['new', 'update', 'destroy', 'snapshot'] as const) sum.byType[k] += c.byType[k];
    sum.lost += c.lost;
    sum.lostKnown &&= c.lostKnown;
    sum.gaps += c.gaps;
  }
  return sum;
}

/** `41 events recorded (new 20, update 15, destroy 6, snapshot 0); 0 events lost in 0 gaps` */
export function countsText(c: {
  events: number;
  byType: EventCounts;
  lost: number;
  lostKnown: boolean;
  gaps: number;
  resyncSkipped?: number;
}): string {
  const b = c.byType;
  const types = `new ${b.new}, update ${b.update}, destroy ${b.destroy}, snapshot ${b.snapshot}`;
  const held =
    (c.resyncSkipped ?? 0) > 0
      ? `; the resync dumps left out ${c.resyncSkipped} ${c.resyncSkipped === 1 ? 'entry' : 'entries'} the journal already held`
      : '';
  return `${count(c.events, 'event')} recorded (${types}); ${lostText(c.lost, c.lostKnown)} in ${count(c.gaps, 'gap')}${held}`;
}

function lostText(lost: number, known: boolean): string {
  return `${known ? '' : 'at least '}${count(lost, 'event')} lost`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** `2026-11-27T07:39:43.692Z → 07:39:45.328Z (1.6 s)`: the end without its date on the same day. */
export function timeRangeText(c: Coverage): string {
  const from = isoOf(c.start);
  if (c.endFrom === 'start') return `${from} (no events, no trailer)`;
  const to = isoOf(c.end);
  const shortTo = to.slice(0, 10) === from.slice(0, 10) ? to.slice(11) : to;
  const upTo = c.endFrom === 'last-event' ? ' up to the last event' : '';
  return `${from} → ${shortTo} (${durationText(c.end - c.start)}${upTo})`;
}

/** `# window: 2026-11-27T07:40:00.000Z → end of recording: 12 of 41 events inside, 29 left out` */
export function windowText(w: WindowCoverage): string {
  const from = w.since === null ? 'start of recording' : isoOf(w.since);
  const to = w.until === null ? 'end of recording' : isoOf(w.until);
  return `${from} → ${to} (--since/--until, inclusive): ${w.inside} of ${count(w.inside + w.outside, 'event')} inside, ${w.outside} left out of the table`;
}

/** Any journal time (≤ 2^53 µs, about the year 2255) is inside Date's range. */
function isoOf(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString();
}

/** A duration in µs as a person reads it: `0.4 s`, `1.6 s`, `12 min 3 s`, `2 h 5 min`, `3 d 4 h`. */
export function durationText(us: number): string {
  if (us < 0) return `−${durationText(-us)}`;
  const s = us / 1e6;
  // Truncated, not rounded: 59.97 s must not read as 60.0 s.
  if (s < 60) return `${(Math.floor(s * 10) / 10).toFixed(1)} s`;
  const whole = Math.floor(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  if (whole < 86400) return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
  return `${Math.floor(whole / 86400)} d ${Math.floor((whole % 86400) / 3600)} h`;
}
