#!/usr/bin/env node
// ct-record: a thin shell over startRecording (parse options, wire signals, print the summary).
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseCollapse } from '../analyzer/flows.js';
import { parseBytes, parseSeconds, runCli } from '../common/cli.js';
import { TOOL_VERSION } from '../common/package.js';
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
    .option('--table <file>', 'live mode: write the flow table here at exit and on SIGUSR1')
    .addOption(
      new Option('--collapse <mode>', 'source-port collapsing for --table: 1024 or none')
        .choices(['1024', 'none'])
        .default('1024'),
    )
    .option('-b, --buffer-size <bytes>', 'netlink receive buffer (K, M, G suffixes)', parseBytes)
    .option('-e, --events <list>', 'event types to record: NEW,UPDATE,DESTROY', parseEvents)
    .addHelpText(
      'after',
      `
Examples:
  sudo ct-record -o /var/lib/conntracker/fw1.mpk --duration 3600
  sudo ct-record -o today.mpk --table today.txt     # kill -USR1 <pid> rewrites today.txt
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
    table?: string;
    collapse: string;
    bufferSize?: number;
    events?: { new: boolean; update: boolean; destroy: boolean };
  }>();
  const rec = startRecording({
    output: o.output,
    force: o.force,
    durationMs: o.duration === undefined ? undefined : o.duration * 1000,
    table: o.table,
    collapse: parseCollapse(o.collapse),
    capture: {
      events: o.events ?? { new: true, update: true, destroy: true },
      bufferSize: o.bufferSize ?? 8 * 1024 * 1024,
    },
    given: {
      output: o.output,
      force: o.force,
      duration: o.duration ?? null,
      table: o.table ?? null,
      collapse: o.collapse,
      bufferSize: o.bufferSize ?? null,
      events: o.events ?? null,
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
  log(`netlink receive buffer: ${rec.bufferSize} bytes`);
  log(`capturing conntrack events into ${o.output} (Ctrl-C or SIGTERM to stop)`);
  const s = await rec.done;
  const t = s.byType;
  log(
    `stopped: ${s.events} events (new ${t.new}, update ${t.update}, destroy ${t.destroy}), ` +
      `${s.flows} flows, ${s.bytes} bytes written to ${s.output}`,
  );
  if (s.enobufs > 0 || s.dropped > 0) {
    log(
      `WARNING: events were lost: ${s.enobufs} kernel buffer overruns (ENOBUFS), ${s.dropped} events dropped ` +
        'while the recorder was behind: raise --buffer-size',
    );
  }
  if (s.malformed > 0) log(`WARNING: ${s.malformed} malformed netlink messages were skipped`);
  return 0;
}

await runCli('ct-record', main);
