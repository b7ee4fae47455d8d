// ct-record's options: the commander definition and help, then the rules on how they combine.
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  type Collapse,
  DEFAULT_COLLAPSE,
  formatCollapse,
  parseCollapse,
} from '../analyzer/core/flows.js';
import type { Cidr } from '../analyzer/core/prefix.js';
import { optionParser, parseBytes, parseSeconds } from '../common/cli.js';
import { CtError, Exit } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { type FormatVersion, parseFormatVersion } from '../journal/format.js';
import { DEFAULT_BUFFER_SIZE } from '../native/index.js';
import { EVENTS_MODES, type EventsMode } from './diet.js';
import { collectCidrs, formatCidrs, parseMark, parseProtos } from './filter.js';
import { parseResyncInterval } from './gaps.js';
import { DEFAULT_PIDFILE } from './pidfile.js';
import type { RecordOptions } from './recording.js';

const EVENT_NAMES = ['NEW', 'UPDATE', 'DESTROY'] as const;

/** The event types subscribed to. */
type EventTypes = { new: boolean; update: boolean; destroy: boolean };

/**
 * -e: a list of event types, or `all` (every type and every event, the default) or `minimal`
 * (every type, UPDATEs only when they change a flow: recorder/diet.ts).
 */
export function parseEventsOption(value: string): EventTypes | EventsMode {
  const word = value.trim().toLowerCase();
  if ((EVENTS_MODES as readonly string[]).includes(word)) return word as EventsMode;
  try {
    return parseEvents(value);
  } catch {
    throw new InvalidArgumentError(
      `use all, minimal, or a comma-separated list of ${EVENT_NAMES.join(', ')}.`,
    );
  }
}

export function parseEvents(value: string): { new: boolean; update: boolean; destroy: boolean } {
  const names = value.split(',').map((s) => s.trim().toUpperCase());
  const bad = names.filter((n) => !(EVENT_NAMES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(`use a comma-separated list of ${EVENT_NAMES.join(', ')}.`);
  }
  return {
    new: names.includes('NEW'),
    update: names.includes('UPDATE'),
    destroy: names.includes('DESTROY'),
  };
}

/** Below this a journal is mostly its header and trailer (about 1 KiB together). */
const MIN_MAX_SIZE = 4096;

export function parseMaxSize(value: string): number {
  const n = parseBytes(value);
  if (n < MIN_MAX_SIZE) throw new InvalidArgumentError('give at least 4K.');
  return n;
}

/**
 * `-f` meant --foreground until 0.2; ct-analyze's `-f` is --follow (as `tail -f`), and one short
 * flag has one meaning in both CLIs. Foreground is the default, so the flag is never needed.
 */
export const DEPRECATED_F =
  '-f is deprecated: foreground is the default, so leave it out (or write --foreground); from 0.3 on -f will be refused';

/** The options as commander parses them. */
export interface ParsedOptions {
  output?: string;
  force: boolean;
  duration?: number;
  maxSize?: number;
  rotate: boolean;
  flushInterval: number;
  table?: string;
  collapse: Collapse;
  bufferSize?: number;
  events?: EventTypes | EventsMode;
  proto?: number[];
  mark?: { value: number; mask: number };
  loopback: boolean;
  src?: Cidr[];
  dst?: Cidr[];
  /** --no-kernel-filter (hidden): filter in user space only (benchmarks, a kernel that misbehaves). */
  kernelFilter: boolean;
  snapshot: boolean;
  resyncInterval: number;
  /** Hidden: resync dumps write every entry, known or not (tests compare the two). */
  resyncFull: boolean;
  enableEvents: boolean;
  enableTracking: boolean;
  check: boolean;
  reliable: boolean;
  user?: string;
  netns?: string;
  daemon: boolean;
  foreground: boolean;
  /** The deprecated `-f`, hidden from --help. */
  f?: boolean;
  pidfile?: string;
  syslogSocket: string;
  formatVersion: FormatVersion;
}

/** ct-record's program: options, help, usage errors on stderr with a pointer to --help. */
export function recorderProgram(): Command {
  return new Command('ct-record')
    .description('Record every netfilter conntrack event of this network namespace into a journal.')
    .version(TOOL_VERSION, '-V, --version')
    .option(
      '-o, --output <file>',
      'journal to write (.mpk); never overwritten without --force (required, except with --check)',
    )
    .option('--force', 'replace an existing journal file (never follows a symlink)', false)
    .option(
      '--duration <seconds>',
      'stop by itself after this many seconds (with --rotate: end each journal after it)',
      parseSeconds,
    )
    .option(
      '--max-size <bytes>',
      'stop once the journal reaches this size, K/M/G suffixes, at least 4K (checked after each write: a journal ends up to one frame past it, plus the events the stop drains; with --rotate: go on in the next journal)',
      parseMaxSize,
    )
    .option(
      '--rotate',
      'at --duration or --max-size, end the journal and go on in the next, losing no event: -o fw1.mpk writes fw1-000001.mpk, fw1-000002.mpk, … chained by digest (ct-analyze verify checks the run)',
      false,
    )
    .option(
      '--flush-interval <seconds>',
      'checkpoint and fsync the journal this often: the most a crash or power loss can cost',
      parseSeconds,
      1,
    )
    .addOption(
      new Option(
        '--format-version <n>',
        'journal format: 2 compresses the events (about 3× smaller), 1 is for ct-analyze versions older than format 2; every journal of a --rotate run has the same',
      )
        .argParser(optionParser(parseFormatVersion))
        .default(2, '2'),
    )
    .option('--table <file>', 'live mode: write the flow table here at exit and on SIGUSR1')
    .addOption(
      // The one parser ct-analyze's --collapse uses too: the same forms, the same error.
      new Option(
        '--collapse <mode>',
        "source-port collapsing for --table: 1024, none, ephemeral (this host's ip_local_port_range) or LO-HI",
      )
        .argParser(optionParser(parseCollapse))
        .default(DEFAULT_COLLAPSE, '1024'),
    )
    .option(
      '-b, --buffer-size <bytes>',
      'netlink receive buffer, K/M/G suffixes (default 8M; the kernel doubles it)',
      parseBytes,
    )
    .option(
      '-e, --events <list>',
      'event types to record: NEW,UPDATE,DESTROY; or all (the default), or minimal: every type, but an UPDATE only when it changes a flow (confirmed, assured, a mark): the same flows from fewer events, only the last-seen time of flows still open at the end is earlier (docs/record.md)',
      parseEventsOption,
    )
    .option(
      '-p, --proto <list>',
      'record only these protocols, e.g. tcp,udp,icmp,icmpv6,47',
      parseProtos,
    )
    .option('--mark <value[/mask]>', 'record only flows whose conntrack mark matches', parseMark)
    .option('--no-loopback', 'leave out flows from or to 127.0.0.0/8 and ::1')
    .option(
      '--src <prefix>',
      'record only flows whose original source is in this prefix (10.0.0.0/8, fd00::/8, 192.0.2.7); repeat or comma-separate for several (any of them); with --dst, both must match',
      collectCidrs,
    )
    .option(
      '--dst <prefix>',
      'record only flows whose original destination is in this prefix; repeatable like --src',
      collectCidrs,
    )
    .addOption(
      new Option(
        '--no-kernel-filter',
        'filter events in user space only, not with a socket filter in the kernel (benchmarks)',
      ).hideHelp(),
    )
    .option(
      '--no-snapshot',
      'do not dump the conntrack table at start (flows older than the recording are then missed)',
    )
    .addOption(
      new Option(
        '--resync-interval <seconds>',
        'after lost events, at least this long between two table dumps that resynchronise the journal (1 to 3600; losses meanwhile wait for the next dump, which writes only entries the journal does not hold yet)',
      )
        .argParser(parseResyncInterval)
        .default(30, '30'),
    )
    .addOption(
      new Option('--resync-full', 'resync dumps write known entries too (tests)')
        .default(false)
        .hideHelp(),
    )
    .option(
      '--enable-events',
      'set net.netfilter.nf_conntrack_events=1 for the run (restored at exit)',
      false,
    )
    .option(
      '--enable-tracking',
      'make conntrack track this namespace for the run: adds nft table inet conntracker_track_PID (rule: ct state new counter), which the kernel removes when ct-record ends',
      false,
    )
    .option(
      '--check',
      'pre-flight: report what would make a recording with these options incomplete, with a fix for each, then exit (0: it would be complete, 1: it would not); writes no journal',
      false,
    )
    .option(
      '--netns <name|path>',
      'record another network namespace: a name from ip netns list, or a path such as /proc/PID/ns/net (joined first, as root; recorded in the header)',
    )
    .option(
      '--user <name>',
      'once the sockets and the journal are open, run as this user (name or uid), keeping only CAP_NET_ADMIN for table dumps; root keeps root (default conntracker, an account of its own: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin conntracker)',
    )
    .option(
      '-d, --daemon',
      `run in the background: returns once recording, messages go to syslog (facility daemon), pid in --pidfile (default ${DEFAULT_PIDFILE})`,
      false,
    )
    .option('--foreground', 'stay in the foreground, messages on stderr (the default)', false)
    .addOption(new Option('-f', 'deprecated spelling of --foreground').hideHelp())
    .option(
      '--pidfile <file>',
      'write the pid here while recording (default with -d: /run/ct-record/ct-record.pid); its directory must be writable by --user',
    )
    .addOption(
      new Option('--syslog-socket <path>', 'the syslog datagram socket of -d (tests)')
        .default('/dev/log')
        .hideHelp(),
    )
    .option(
      '--reliable',
      'NETLINK_BROADCAST_ERROR: the kernel retries events it could not deliver, but may drop packets while the recorder stalls',
      false,
    )
    .addHelpText(
      'after',
      `
Examples:
  sudo ct-record -o /var/lib/conntracker/fw1.mpk --duration 3600
  sudo ct-record --check                             # pre-flight: would a recording be complete?
  sudo ct-record -o fw1.mpk --rotate --duration 3600 # fw1-000001.mpk, … one an hour
  sudo ct-record -o today.mpk --table today.txt     # kill -USR1 <pid> rewrites today.txt
  sudo ct-record -o web.mpk -p tcp --no-loopback --mark 0x10/0xff
  sudo ct-record --netns fw -o fw.mpk                # namespace fw of ip netns, from outside it
  sudo ct-record -d -o /var/lib/conntracker/fw1.mpk # daemon: syslog, /run/ct-record/ct-record.pid
  ct-analyze today.mpk                               # no root needed to analyze

Conntrack tracks a namespace only once a rule needs it (--enable-tracking adds one), e.g.
  nft add table inet conntracker
  nft add chain inet conntracker pre '{ type filter hook prerouting priority raw; }'
  nft add rule inet conntracker pre ct state new,established,related accept   (same on output)
ct-record --check tells whether this namespace needs one.`,
    )
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`${str.trimEnd()}\n(see ct-record --help)\n`),
    });
}

/** --check: the pre-flight of a recording with these options. */
export interface CheckRun {
  kind: 'check';
  bufferSize: number;
  snapshot: boolean;
  enableEvents: boolean;
  enableTracking: boolean;
  user?: string;
  netns?: string;
}

/** A recording, in the foreground or as the daemon (the launcher decides which: recorder/main.ts). */
export interface RecordRun {
  kind: 'record';
  /** -d: run in the background (in the launcher: start the daemon; in the daemon: log to syslog). */
  daemon: boolean;
  /** startRecording's options, but for the hooks the session adds (log lines). */
  record: Omit<RecordOptions, 'onRotate' | 'onGap'>;
  pidfile?: string;
  syslogSocket: string;
}

export type RecorderRun = CheckRun | RecordRun;

function usage(message: string): CtError {
  return new CtError('EUSAGE', message, { exit: Exit.USAGE });
}

/**
 * The combination rules, after commander parsed `program`: what to run, or a usage error (exit
 * 2) saying which options clash and what to give instead. A missing -o is commander's own error
 * (as a missing required option). `warn` says that a deprecated spelling was used.
 */
export function settleOptions(program: Command, warn: (message: string) => void): RecorderRun {
  const o = program.opts<ParsedOptions>();
  if (o.f === true) warn(DEPRECATED_F);
  const foreground = o.foreground || o.f === true;
  if (o.daemon && foreground) {
    throw usage('-d and --foreground exclude each other: give one (--foreground is the default)');
  }
  if (o.daemon && o.check) {
    throw usage('--check prints its findings here: leave out -d');
  }
  const bufferSize = o.bufferSize ?? DEFAULT_BUFFER_SIZE;
  if (o.check) {
    return {
      kind: 'check',
      bufferSize,
      snapshot: o.snapshot,
      enableEvents: o.enableEvents,
      enableTracking: o.enableTracking,
      user: o.user,
      netns: o.netns,
    };
  }
  if (o.output === undefined) {
    return program.error("error: required option '-o, --output <file>' not specified", {
      exitCode: Exit.USAGE,
    });
  }
  if (o.rotate && o.duration === undefined && o.maxSize === undefined) {
    throw usage(
      '--rotate needs --duration or --max-size: they say when each journal ends (see ct-record --help)',
    );
  }
  const capture = {
    events:
      o.events === undefined || typeof o.events === 'string'
        ? { new: true, update: true, destroy: true }
        : o.events,
    bufferSize,
    reliable: o.reliable,
  };
  const filter = { protos: o.proto, mark: o.mark, noLoopback: !o.loopback, src: o.src, dst: o.dst };
  return {
    kind: 'record',
    daemon: o.daemon,
    pidfile: o.pidfile,
    syslogSocket: o.syslogSocket,
    record: {
      output: o.output,
      force: o.force,
      formatVersion: o.formatVersion,
      durationMs: o.duration === undefined ? undefined : o.duration * 1000,
      maxSize: o.maxSize,
      rotate: o.rotate,
      flushMs: o.flushInterval * 1000,
      table: o.table,
      collapse: o.collapse,
      capture,
      snapshot: o.snapshot,
      resyncIntervalMs: o.resyncInterval * 1000,
      resyncSkipKnown: !o.resyncFull,
      eventsMode: o.events === 'minimal' ? 'minimal' : 'all',
      enableEvents: o.enableEvents,
      enableTracking: o.enableTracking,
      filter,
      kernelFilter: o.kernelFilter,
      user: o.user,
      netns: o.netns,
      // What the journal header records: the options as given (v1 journals hold the same keys).
      given: {
        ...capture,
        duration: o.duration ?? null,
        maxSize: o.maxSize ?? null,
        rotate: o.rotate,
        flushInterval: o.flushInterval,
        table: o.table ?? null,
        collapse: formatCollapse(o.collapse),
        snapshot: o.snapshot,
        resyncInterval: o.resyncInterval,
        eventsMode: o.events === 'minimal' ? 'minimal' : 'all',
        enableEvents: o.enableEvents,
        enableTracking: o.enableTracking,
        user: o.user ?? null,
        netns: o.netns ?? null,
        filter: {
          protos: o.proto ?? null,
          mark: o.mark ?? null,
          noLoopback: !o.loopback,
          // Only when given: journals without them read as before.
          ...(o.src === undefined ? {} : { src: formatCidrs(o.src) }),
          ...(o.dst === undefined ? {} : { dst: formatCidrs(o.dst) }),
        },
      },
    },
  };
}
