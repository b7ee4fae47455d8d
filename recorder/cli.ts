#!/usr/bin/env node
// ct-record: a thin shell over startRecording (parse options, wire signals, print the summary).
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCollapse } from '../analyzer/flows.js';
import { parseBytes, parseSeconds, runCli } from '../common/cli.js';
import { TOOL_VERSION } from '../common/package.js';
import { DEFAULT_BUFFER_SIZE } from '../native/index.js';
import { parseMark, parseProtos } from './filter.js';
import { startRecording } from './recording.js';

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

async function main(): Promise<number> {
  const program = new Command('ct-record')
    .description('Record every netfilter conntrack event of this network namespace into a journal.')
    .version(TOOL_VERSION, '-V, --version')
    .requiredOption(
      '-o, --output <file>',
      'journal to write (.mpk); never overwritten without --force',
    )
    .option('--force', 'replace an existing journal file (never follows a symlink)', false)
    .option('--duration <seconds>', 'stop by itself after this many seconds', parseSeconds)
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
      '--user <name>',
      'once the sockets and the journal are open, run as this user (name or uid), keeping only CAP_NET_ADMIN for table dumps; root keeps root (default nobody)',
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
  sudo ct-record -o today.mpk --table today.txt     # kill -USR1 <pid> rewrites today.txt
  sudo ct-record -o web.mpk -p tcp --no-loopback --mark 0x10/0xff
  ct-analyze today.mpk                               # no root needed to analyze

Conntrack only tracks a namespace that has a rule needing it, e.g.
  nft add table inet ct; nft add chain inet ct pre '{ type filter hook prerouting priority raw; }'
  nft add rule inet ct pre ct state new,established,related accept   (and the same on output)`,
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
    reliable: boolean;
    user?: string;
  }>();
  const capture = {
    events: o.events ?? { new: true, update: true, destroy: true },
    bufferSize: o.bufferSize ?? DEFAULT_BUFFER_SIZE,
    reliable: o.reliable,
  };
  const filter = { protos: o.proto, mark: o.mark, noLoopback: !o.loopback };
  const rec = startRecording({
    output: o.output,
    force: o.force,
    durationMs: o.duration === undefined ? undefined : o.duration * 1000,
    flushMs: o.flushInterval * 1000,
    table: o.table,
    collapse: parseCollapse(o.collapse),
    capture,
    snapshot: o.snapshot,
    enableEvents: o.enableEvents,
    filter,
    user: o.user,
    given: {
      ...capture,
      duration: o.duration ?? null,
      flushInterval: o.flushInterval,
      table: o.table ?? null,
      collapse: o.collapse,
      snapshot: o.snapshot,
      enableEvents: o.enableEvents,
      user: o.user ?? null,
      filter: { protos: o.proto ?? null, mark: o.mark ?? null, noLoopback: !o.loopback },
    },
  });
  const log = (line: string) => process.stderr.write(`ct-record: ${line}\n`);
  process.on('SIGINT', rec.stop);
  process.on('SIGTERM', rec.stop);
  process.on('SIGUSR1', () => {
    const path = rec.writeTable();
    log(
      path === undefined
        ? 'SIGUSR1 ignored: no --table file given'
        : `flow table written to ${path}`,
    );
  });
  log(rec.privileges);
  log(`netlink receive buffer: ${rec.bufferSize} bytes${o.reliable ? ', reliable delivery' : ''}`);
  log(`capturing conntrack events into ${o.output} (Ctrl-C or SIGTERM to stop)`);
  rec.snapshot.then(
    (n) => o.snapshot && log(`table dump: ${n} existing flows recorded as snapshot entries`),
    (err: Error) =>
      log(
        `WARNING: the table dump failed (${err.message}): flows older than the recording may be missing`,
      ),
  );
  const s = await rec.done;
  const t = s.byType;
  log(
    `stopped: ${s.events} events (new ${t.new}, update ${t.update}, destroy ${t.destroy}, ` +
      `snapshot ${t.snapshot})${s.flows === undefined ? '' : `, ${s.flows} flows`}, ` +
      `${s.bytes} bytes written to ${s.output}`,
  );
  log(`journal sha256 ${s.sha256} (check it with: ct-analyze verify ${s.output})`);
  if (s.lost > 0) {
    log(
      `WARNING: ${s.lost} events were lost in ${s.gaps} gaps (recorded in the journal; ` +
        'each followed by a table dump): raise --buffer-size or narrow what is recorded with -e, -p, --mark',
    );
  }
  if (s.filtered > 0) log(`${s.filtered} events left out by --proto, --mark or --no-loopback`);
  if (s.malformed > 0) log(`WARNING: ${s.malformed} malformed netlink messages were skipped`);
  return 0;
}

await runCli('ct-record', main);
