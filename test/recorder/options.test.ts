// ct-record's options without a kernel: combination rules as usage errors, -f's deprecation, --collapse forms, --help.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import t, { type Test } from 'tap';
import { parseCollapse } from '../../analyzer/core/flows.js';
import { CtError, Exit } from '../../common/errors.js';
import { PACKAGE_ROOT } from '../../common/package.js';
import { startDaemon } from '../../recorder/daemon.js';
import {
  DEPRECATED_F,
  type RecorderRun,
  recorderProgram,
  settleOptions,
} from '../../recorder/options.js';

/** Parses `args` as ct-record would; `warnings` and `stderr` keep what it said. */
function parse(args: readonly string[]) {
  const warnings: string[] = [];
  let stderr = '';
  const program = recorderProgram().configureOutput({
    writeErr: (s) => {
      stderr += s;
    },
    writeOut: () => {},
  });
  const settle = (): RecorderRun => {
    program.parse(args, { from: 'user' });
    return settleOptions(program, (m) => warnings.push(m));
  };
  return { settle, warnings, stderr: () => stderr };
}

function usageError(t: Test, args: readonly string[], message: string): void {
  const p = parse(args);
  t.throws(
    p.settle,
    new CtError('EUSAGE', message, { exit: Exit.USAGE }),
    `${args.join(' ')}: ${message}`,
  );
  try {
    p.settle();
  } catch (err) {
    t.equal((err as CtError).exit, Exit.USAGE, `${args.join(' ')}: exit 2`);
  }
}

t.test('options: combinations that cannot work are usage errors saying what to do', async (t) => {
  usageError(
    t,
    ['-o', 'x.mpk', '--rotate'],
    '--rotate needs --duration or --max-size: they say when each journal ends (see ct-record --help)',
  );
  usageError(t, ['-d', '--check'], '--check prints its findings here: leave out -d');
  usageError(
    t,
    ['-d', '--foreground', '-o', 'x.mpk'],
    '-d and --foreground exclude each other: give one (--foreground is the default)',
  );
  usageError(
    t,
    ['-d', '-f', '-o', 'x.mpk'],
    '-d and --foreground exclude each other: give one (--foreground is the default)',
  );
});

t.test('options: a missing -o is commander’s required-option error, exit 2', async (t) => {
  const p = parse([]);
  t.throws(p.settle, CommanderError);
  t.equal(
    p.stderr(),
    "error: required option '-o, --output <file>' not specified\n(see ct-record --help)\n",
  );
  const ok = parse(['--check', '-o', 'never-written.mpk']).settle();
  t.equal(ok.kind, 'check', '--check needs no -o, and ignores one (it writes no journal)');
});

t.test('options: -f still means --foreground, with a deprecation warning', async (t) => {
  const old = parse(['-f', '-o', 'x.mpk']);
  const run = old.settle();
  t.match(run, { kind: 'record', daemon: false }, 'a foreground recording');
  t.strictSame(old.warnings, [DEPRECATED_F], 'one warning');
  t.match(DEPRECATED_F, /^-f is deprecated: .*leave it out.*--foreground.*0\.3/);
  const now = parse(['--foreground', '-o', 'x.mpk']);
  t.strictSame(now.settle(), run, '--foreground: the same recording');
  t.strictSame(now.warnings, [], 'and no warning');
  t.strictSame(parse(['-o', 'x.mpk']).settle(), run, 'the same as giving neither');
});

t.test(
  'options: --collapse takes every form ct-analyze takes, through parseCollapse',
  async (t) => {
    for (const form of ['1024', 'none', 'ephemeral', '32768-60999', '0-65535', '500-500']) {
      const run = parse(['-o', 'x.mpk', '--table', 't.txt', '--collapse', form]).settle();
      if (run.kind !== 'record') throw new Error('not a recording');
      t.strictSame(run.record.collapse, parseCollapse(form), `${form}: parseCollapse's mode`);
      t.equal(run.record.given.collapse, form, `${form}: the header records it as given`);
    }
    const none = parse(['-o', 'x.mpk']).settle();
    t.match(
      none,
      { record: { collapse: { kind: '1024' }, given: { collapse: '1024' } } },
      'default',
    );
    for (const bad of ['bogus', '70000-1', '2-1', '']) {
      const p = parse(['-o', 'x.mpk', '--collapse', bad]);
      t.throws(p.settle, CommanderError, `${JSON.stringify(bad)} is refused`);
      let message = '';
      try {
        parseCollapse(bad);
      } catch (err) {
        message = (err as Error).message;
      }
      t.equal(
        p.stderr(),
        `error: option '--collapse <mode>' argument '${bad}' is invalid. ${message}\n(see ct-record --help)\n`,
        `${JSON.stringify(bad)}: parseCollapse's words, as ct-analyze says them`,
      );
    }
  },
);

t.test('options: the header records the options as given', async (t) => {
  const run = parse([
    '-o',
    'x.mpk',
    '--rotate',
    '--max-size',
    '1M',
    '-p',
    'tcp',
    '--no-loopback',
    '-b',
    '1M',
    '-e',
    'NEW,DESTROY',
  ]).settle();
  t.match(run, {
    kind: 'record',
    record: {
      output: 'x.mpk',
      maxSize: 1024 * 1024,
      rotate: true,
      capture: { bufferSize: 1024 * 1024, events: { new: true, update: false, destroy: true } },
      filter: { protos: [6], noLoopback: true },
      given: {
        bufferSize: 1024 * 1024,
        duration: null,
        maxSize: 1024 * 1024,
        rotate: true,
        flushInterval: 1,
        table: null,
        collapse: '1024',
        user: null,
        netns: null,
        filter: { protos: [6], mark: null, noLoopback: true },
      },
    },
  });
});

t.test(
  'options: -e minimal subscribes to every type, diets UPDATEs and says so in the header; -e all is the default',
  async (t) => {
    const every = { new: true, update: true, destroy: true };
    t.match(parse(['-o', 'x.mpk', '-e', 'minimal']).settle(), {
      record: {
        capture: { events: every },
        eventsMode: 'minimal',
        given: { events: every, eventsMode: 'minimal' },
      },
    });
    t.match(parse(['-o', 'x.mpk', '-e', 'all']).settle(), {
      record: { capture: { events: every }, eventsMode: 'all', given: { eventsMode: 'all' } },
    });
    t.match(parse(['-o', 'x.mpk']).settle(), {
      record: { eventsMode: 'all', given: { eventsMode: 'all' } },
    });
    t.match(parse(['-o', 'x.mpk', '-e', 'new,update']).settle(), {
      record: {
        capture: { events: { new: true, update: true, destroy: false } },
        eventsMode: 'all',
      },
    });
    const p = parse(['-o', 'x.mpk', '-e', 'some']);
    t.throws(p.settle, CommanderError, 'a word that is neither a mode nor a type is refused');
    t.match(p.stderr(), /use all, minimal, or a comma-separated list of NEW, UPDATE, DESTROY/);
  },
);

t.test('options: --help lists --foreground without -f, and --collapse with LO-HI', async (t) => {
  const help = recorderProgram().helpInformation();
  t.match(help, /^ {2}--foreground {2,}stay in the foreground/m, '--foreground has no short flag');
  t.notMatch(help, /-f,/, 'no -f anywhere in the option list');
  t.match(help, /--collapse <mode> +source-port collapsing for --table: 1024, none,\s+ephemeral/);
  t.match(help, /or\s+LO-HI \(default: 1024\)/);
  const shorts = [...help.matchAll(/^ {2}(-\w), /gm)].map((m) => m[1]).sort();
  t.strictSame(shorts, ['-V', '-b', '-d', '-e', '-h', '-o', '-p'], 'the short flags left');
});

t.test('options: the built ct-record warns about -f on stderr before anything else', async (t) => {
  const cli = join(PACKAGE_ROOT, 'dist', 'recorder', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  // -d with -f is refused before anything is opened: no root, no kernel asked.
  const r = spawnSync(process.execPath, [cli, '-f', '-d', '-o', 'never.mpk'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(r.status, 2, 'exit 2');
  t.equal(
    r.stderr,
    `ct-record: WARNING: ${DEPRECATED_F}\nct-record: -d and --foreground exclude each other: give one (--foreground is the default)\n`,
  );
  t.equal(r.stdout, '');
});

t.test(
  'daemon: the launcher says where messages go, or fails with the daemon’s words',
  async (t) => {
    let said = '';
    const write = (s: string) => {
      said += s;
    };
    t.equal(await startDaemon(['cli.js'], write, async () => ({ ready: true, pid: 77 })), 0);
    t.equal(said, 'ct-record: daemon mode: check syslog (pid 77)\n');
    said = '';
    await startDaemon(['cli.js'], write, async () => ({
      ready: true,
      pid: 78,
      syslog: 'x: ENOENT',
    }));
    t.match(said, /WARNING: the daemon cannot reach syslog \(x: ENOENT\).*without -d\n$/);
    await t.rejects(
      startDaemon(['cli.js'], write, async () => ({ ready: false, message: 'no user', exit: 2 })),
      new CtError('EDAEMON', 'no user', { exit: 2 }),
    );
  },
);

t.test('options: --format-version is 2 unless 1 is given; anything else is refused', async (t) => {
  const version = (args: string[]) => {
    const run = parse(['-o', 'x.mpk', ...args]).settle();
    return run.kind === 'record' ? run.record.formatVersion : undefined;
  };
  t.equal(version([]), 2, 'default: format 2');
  t.equal(version(['--format-version', '1']), 1);
  t.equal(version(['--format-version', '2']), 2);
  for (const bad of ['3', '0', '1.0', 'v1', '', '12']) {
    const p = parse(['-o', 'x.mpk', '--format-version', bad]);
    t.throws(p.settle, CommanderError, `${JSON.stringify(bad)} is refused`);
    t.equal(
      p.stderr(),
      `error: option '--format-version <n>' argument '${bad}' is invalid. give 2 (compressed events, the default) or 1 (for readers older than format 2).\n(see ct-record --help)\n`,
      `${JSON.stringify(bad)}: what to give instead`,
    );
  }
  t.match(recorderProgram().helpInformation(), /--format-version <n> +journal format: 2/);
});

t.test('options: --resync-interval is 30 s unless given, 1–3600, in the header', async (t) => {
  const record = (args: string[]) => {
    const run = parse(['-o', 'x.mpk', ...args]).settle();
    if (run.kind !== 'record') throw new Error('not a recording');
    return run.record;
  };
  t.match(record([]), {
    resyncIntervalMs: 30_000,
    resyncSkipKnown: true,
    given: { resyncInterval: 30 },
  });
  t.match(record(['--resync-interval', '1.5']), {
    resyncIntervalMs: 1500,
    given: { resyncInterval: 1.5 },
  });
  t.match(record(['--resync-interval', '3600', '--resync-full']), {
    resyncIntervalMs: 3_600_000,
    resyncSkipKnown: false,
  });
  for (const bad of ['0', '0.5', '3601', '-1', 'soon', '']) {
    const p = parse(['-o', 'x.mpk', '--resync-interval', bad]);
    t.throws(p.settle, CommanderError, `${JSON.stringify(bad)} is refused`);
    t.equal(
      p.stderr(),
      `error: option '--resync-interval <seconds>' argument '${bad}' is invalid. give a number of seconds from 1 to 3600, e.g. 30.\n(see ct-record --help)\n`,
    );
  }
  const help = recorderProgram().helpInformation();
  t.match(help, /--resync-interval <seconds> +after lost events/);
  t.notMatch(help, /--resync-full/, 'the test switch stays out of --help');
});
