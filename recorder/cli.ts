#!/usr/bin/env node
// ct-record: a thin shell over startRecording (parse options, wire signals, print the summary).
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCollapse } from '../analyzer/core/flows.js';
import { parseBytes, parseSeconds, runCli } from '../common/cli.js';
import { CtError, Exit, type ExitCode } from '../common/errors.js';
import { TOOL_VERSION } from '../common/package.js';
import { splitOutput } from '../journal/format.js';
import { DEFAULT_BUFFER_SIZE, joinNetns, loadNative } from '../native/index.js';
import { type DaemonChannel, daemonChannel, launchDaemon } from './daemon.js';
import { parseMark, parseProtos } from './filter.js';
import { type Logger, stderrLogger, syslogLogger } from './log.js';
import {
  DEFAULT_PIDFILE,
  preparePidfileDir,
  refuseRunning,
  removePidfile,
  writePidfile,
} from './pidfile.js';
import { formatPreflight, netnsRunner, preflightExit, runPreflight } from './preflight.js';
import { planPrivileges } from './privileges.js';
import { startRecording } from './recording.js';
import { trackingTable } from './tracking.js';

const EVENT_NAMES = ['NEW', 'UPDATE', 'DESTROY'] as const;

function parseEvents(value: string): { new: boolean; update: boolean; destroy: boolean } {
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

/** Daemon mode (-d): set once this process is the daemon, so that a failure reaches syslog and the launcher. */
let daemon: { channel: DaemonChannel; log: Logger } | undefined;

/** Below this a journal is mostly its header and trailer (about 1 KiB together). */
const MIN_MAX_SIZE = 4096;

function parseMaxSize(value: string): number {
  const n = parseBytes(value);
  if (n < MIN_MAX_SIZE) throw new InvalidArgumentError('give at least 4K.');
  return n;
}

async function main(): Promise<number> {
  const program = new Command('ct-record')
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
    .option('--table <file>', 'live mode: write the flow table here at exit and on SIGUSR1')
    .addOption(
      new Option(
        '--collapse <mode>',
        "source-port collapsing for --table: 1024, none or ephemeral (this host's ip_local_port_range)",
      )
        .choices(['1024', 'none', 'ephemeral'])
        .default('1024'),
    )
    .option(
      '-b, --buffer-size <bytes>',
      'netlink receive buffer, K/M/G suffixes (default 8M; the kernel doubles it)',
      parseBytes,
    )
    .option('-e, --events <list>', 'event types to record: NEW,UPDATE,DESTROY', parseEvents)
    .option(
      '-p, --proto <list>',
      'record only these protocols, e.g. tcp,udp,icmp,icmpv6,47',
      parseProtos,
    )
    .option('--mark <value[/mask]>', 'record only flows whose conntrack mark matches', parseMark)
    .option('--no-loopback', 'leave out flows from or to 127.0.0.0/8 and ::1')
    .option(
      '--no-snapshot',
      'do not dump the conntrack table at start (flows older than the recording are then missed)',
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
    .option('-f, --foreground', 'stay in the foreground, messages on stderr (the default)', false)
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
  program.parse();
  const o = program.opts<{
    output: string;
    force: boolean;
    duration?: number;
    maxSize?: number;
    rotate: boolean;
    flushInterval: number;
    table?: string;
    collapse: string;
    bufferSize?: number;
    events?: { new: boolean; update: boolean; destroy: boolean };
    proto?: number[];
    mark?: { value: number; mask: number };
    loopback: boolean;
    snapshot: boolean;
    enableEvents: boolean;
    enableTracking: boolean;
    check: boolean;
    reliable: boolean;
    user?: string;
    netns?: string;
    daemon: boolean;
    foreground: boolean;
    pidfile?: string;
    syslogSocket: string;
  }>();
  const channel = daemonChannel();
  if (o.daemon && o.foreground) {
    throw new CtError('EUSAGE', '-d and -f exclude each other: give one (-f is the default)', {
      exit: Exit.USAGE,
    });
  }
  if (o.daemon && o.check) {
    throw new CtError('EUSAGE', '--check prints its findings here: leave out -d', {
      exit: Exit.USAGE,
    });
  }
  if (o.check) {
    // The namespace checked is the one that would be recorded.
    if (o.netns !== undefined) joinNetns(o.netns);
    const { facts, findings } = await runPreflight({
      bufferSize: o.bufferSize ?? DEFAULT_BUFFER_SIZE,
      snapshot: o.snapshot,
      enableEvents: o.enableEvents,
      enableTracking: o.enableTracking,
      user: o.user,
    });
    process.stdout.write(formatPreflight(facts.netns, findings, netnsRunner(o.netns)));
    return preflightExit(findings);
  }
  if ((o.output as string | undefined) === undefined) {
    program.error("error: required option '-o, --output <file>' not specified", {
      exitCode: Exit.USAGE,
    });
  }
  const capture = {
    events: o.events ?? { new: true, update: true, destroy: true },
    bufferSize: o.bufferSize ?? DEFAULT_BUFFER_SIZE,
    reliable: o.reliable,
  };
  const filter = { protos: o.proto, mark: o.mark, noLoopback: !o.loopback };
  if (o.rotate && o.duration === undefined && o.maxSize === undefined) {
    throw new CtError(
      'EUSAGE',
      '--rotate needs --duration or --max-size: they say when each journal ends (see ct-record --help)',
      { exit: Exit.USAGE },
    );
  }
  if (o.daemon && channel === undefined) {
    // The launcher: the daemon is this script again, with the same options.
    const report = await launchDaemon(process.argv.slice(1));
    if (!report.ready) {
      throw new CtError('EDAEMON', report.message, { exit: report.exit as ExitCode });
    }
    process.stderr.write(`ct-record: daemon mode: check syslog (pid ${report.pid})\n`);
    if (report.syslog !== undefined) {
      process.stderr.write(
        `ct-record: WARNING: the daemon cannot reach syslog (${report.syslog}): its messages are lost; start a syslog daemon (rsyslog, systemd-journald) or run it under systemd with -f\n`,
      );
    }
    return 0;
  }
  const syslog =
    channel === undefined
      ? undefined
      : syslogLogger({
          socket: o.syslogSocket,
          send: (socket, line) => loadNative().sendDatagram(socket, line),
        });
  const log: Logger = syslog ?? stderrLogger();
  if (channel !== undefined) daemon = { channel, log };
  // Checked before anything is opened; written once recording, as the user of the drop.
  const pidfile = o.pidfile ?? (channel === undefined ? undefined : DEFAULT_PIDFILE);
  if (pidfile !== undefined) {
    refuseRunning(pidfile);
    const plan = planPrivileges(o.user);
    preparePidfileDir(pidfile, plan.drop ? plan.user : undefined);
  }
  // `fw1-*.mpk`: what verifies or analyzes a whole run.
  const { stem, ext } = splitOutput(o.output);
  const runGlob = `${stem}-*${ext}`;
  const rec = startRecording({
    output: o.output,
    force: o.force,
    durationMs: o.duration === undefined ? undefined : o.duration * 1000,
    maxSize: o.maxSize,
    rotate: o.rotate,
    onRotate: (c, next) =>
      log.info(
        `journal ${c.path} complete: ${c.events} events, ${c.bytes} bytes, sha256 ${c.sha256}; now writing ${next}`,
      ),
    onGap: (g) =>
      log.warn(
        `${g.lostKnown ? '' : 'at least '}${g.lost} events lost (${g.cause === 'ENOBUFS' ? 'the netlink receive buffer overran' : "the recorder's queue was full"}), recorded in the journal as a gap; ${g.resync >= 0 ? `a table dump resynchronised ${g.resync} flows` : 'no table dump resynchronised it'}: raise --buffer-size or narrow what is recorded`,
      ),
    flushMs: o.flushInterval * 1000,
    table: o.table,
    collapse: parseCollapse(o.collapse),
    capture,
    snapshot: o.snapshot,
    enableEvents: o.enableEvents,
    enableTracking: o.enableTracking,
    filter,
    user: o.user,
    netns: o.netns,
    given: {
      ...capture,
      duration: o.duration ?? null,
      maxSize: o.maxSize ?? null,
      rotate: o.rotate,
      flushInterval: o.flushInterval,
      table: o.table ?? null,
      collapse: o.collapse,
      snapshot: o.snapshot,
      enableEvents: o.enableEvents,
      enableTracking: o.enableTracking,
      user: o.user ?? null,
      netns: o.netns ?? null,
      filter: { protos: o.proto ?? null, mark: o.mark ?? null, noLoopback: !o.loopback },
    },
  });
  process.on('SIGINT', rec.stop);
  process.on('SIGTERM', rec.stop);
  process.on('SIGUSR1', () => {
    if (o.table === undefined) {
      log.info('SIGUSR1 ignored: no --table file given');
      return;
    }
    log.info(`Dumping the flow table into: ${o.table}`);
    try {
      log.info(`flow table written to ${rec.writeTable()}`);
    } catch (err) {
      log.error(`cannot write the flow table: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  // logrotate's postrotate (or systemctl reload): journals are never renamed under the recorder,
  // so "reopen" means: end this journal cleanly and go on in the next numbered one.
  process.on('SIGHUP', () => {
    if (!o.rotate) {
      log.info(
        `SIGHUP ignored: without --rotate the recording is one journal (${o.output}); record with --rotate to end a journal on SIGHUP`,
      );
      return;
    }
    log.info(`SIGHUP: ending ${rec.output}, going on in the next journal`);
    rec.rotate();
  });
  if (pidfile !== undefined) {
    try {
      writePidfile(pidfile);
    } catch (err) {
      rec.stop();
      await rec.done.catch(() => {});
      throw err;
    }
  }
  log.info('Starting to capture conntrack events');
  log.info(rec.privileges);
  if (o.netns !== undefined) log.info(`recording network namespace ${o.netns} (${rec.netns})`);
  if (o.enableTracking) {
    log.info(
      `--enable-tracking: table inet ${trackingTable()} makes conntrack track this namespace; the kernel removes it when ct-record ends`,
    );
  }
  log.info(
    `netlink receive buffer: ${rec.bufferSize} bytes${o.reliable ? ', reliable delivery' : ''}`,
  );
  const into = o.rotate ? `${rec.output}, then the next of ${runGlob}` : o.output;
  log.info(`capturing conntrack events into ${into} (Ctrl-C or SIGTERM to stop)`);
  if (pidfile !== undefined) log.info(`pid ${process.pid} in ${pidfile}`);
  channel?.report({
    ready: true,
    pid: process.pid,
    ...(syslog?.lastFailure === undefined ? {} : { syslog: syslog.lastFailure }),
  });
  rec.snapshot.then(
    (n) => o.snapshot && log.info(`table dump: ${n} existing flows recorded as snapshot entries`),
    (err: Error) =>
      log.warn(
        `the table dump failed (${err.message}): flows older than the recording may be missing`,
      ),
  );
  let s: Awaited<typeof rec.done>;
  try {
    s = await rec.done;
  } finally {
    const why = pidfile === undefined ? undefined : removePidfile(pidfile);
    if (why !== undefined) log.warn(why);
  }
  if (o.table !== undefined) log.info(`Dumping the flow table into: ${o.table}`);
  log.info('Finished capturing conntrack events');
  const t = s.byType;
  log.info(
    `stopped: ${s.events} events (new ${t.new}, update ${t.update}, destroy ${t.destroy}, ` +
      `snapshot ${t.snapshot})${s.flows === undefined ? '' : `, ${s.flows} flows`}, ` +
      `${s.bytes} bytes written to ${o.rotate ? `${s.journals} journals, the last ` : ''}${s.output}`,
  );
  log.info(
    o.rotate
      ? `journal sha256 ${s.sha256} of ${s.output} (check the run with: ct-analyze verify ${runGlob})`
      : `journal sha256 ${s.sha256} (check it with: ct-analyze verify ${s.output})`,
  );
  if (s.lost > 0) {
    log.warn(
      `${s.lost} events were lost in ${s.gaps} gaps (recorded in the journal; ` +
        'each followed by a table dump): raise --buffer-size or narrow what is recorded with -e, -p, --mark',
    );
  }
  if (s.filtered > 0) log.info(`${s.filtered} events left out by --proto, --mark or --no-loopback`);
  if (s.malformed > 0) log.warn(`${s.malformed} malformed netlink messages were skipped`);
  return 0;
}

await runCli('ct-record', async () => {
  try {
    return await main();
  } catch (err) {
    // The daemon's stderr is /dev/null: the error goes to syslog, and to the launcher if it waits.
    if (daemon !== undefined) {
      const message =
        err instanceof CtError ? err.message : `internal error (please report it): ${String(err)}`;
      daemon.log.error(message);
      daemon.channel.report({
        ready: false,
        message,
        exit: err instanceof CtError ? err.exit : Exit.RUNTIME,
      });
    }
    throw err;
  }
});
