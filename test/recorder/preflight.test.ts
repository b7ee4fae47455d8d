// ct-record --check on a fake proc tree: every finding, its status and fix, the exit rule, the output.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  formatPreflight,
  netnsRunner,
  preflightExit,
  readPreflightFacts,
  runCheck,
  runPreflight,
} from '../../recorder/preflight.js';
import {
  evaluatePreflight,
  type Finding,
  type LiveFacts,
  type PreflightFacts,
  type PreflightOptions,
  TRACKING_RULES,
} from '../../recorder/preflight-findings.js';
import type { FamilyProbe, TrackingProbe } from '../../recorder/tracking-probe.js';
import { tempDir } from '../helpers/journals.js';

type Teardown = { teardown(fn: () => void): void };

const MIB = 1 << 20;
/** CapEff of root (every capability) and of a process with CAP_NET_ADMIN (bit 12) alone. */
const CAP_ALL = '000001ffffffffff';
const CAP_NET_ADMIN_ONLY = '0000000000001000';

interface FakeProc {
  capEff?: string;
  sysctls?: Record<string, string>;
  module?: boolean;
}

const DEFAULT_SYSCTLS = {
  'net/netfilter/nf_conntrack_max': '262144',
  'net/netfilter/nf_conntrack_events': '2',
  'net/netfilter/nf_conntrack_timestamp': '0',
  'net/netfilter/nf_conntrack_acct': '1',
  'net/netfilter/nf_conntrack_count': '3',
  'net/core/rmem_max': '4194304',
};

/** A proc tree (and sys tree) as the kernel shows them, with only what preflight reads. */
function fakeTree(t: Teardown, fake: FakeProc = {}): { proc: string; sys: string } {
  const root = tempDir(t, 'preflight');
  const proc = join(root, 'proc');
  const sys = join(root, 'sys');
  mkdirSync(join(proc, 'self/ns'), { recursive: true });
  symlinkSync('net:[4026532001]', join(proc, 'self/ns/net'));
  writeFileSync(
    join(proc, 'self/status'),
    `Name:\tnode\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapEff:\t${fake.capEff ?? CAP_ALL}\n`,
  );
  for (const [path, value] of Object.entries(fake.sysctls ?? DEFAULT_SYSCTLS)) {
    mkdirSync(join(proc, 'sys', path, '..'), { recursive: true });
    writeFileSync(join(proc, 'sys', path), `${value}\n`);
  }
  mkdirSync(join(sys, 'module', fake.module === false ? 'nf_tables' : 'nf_conntrack'), {
    recursive: true,
  });
  return { proc, sys };
}

const FACTS: PreflightFacts = {
  netns: 'net:[4026532001]',
  conntrackLoaded: true,
  euid: 0,
  netAdmin: true,
  events: 1,
  timestamp: 1,
  acct: 1,
  rmemMax: 4 * MIB,
  count: 3,
};

const OPTS: PreflightOptions = {
  bufferSize: 8 * MIB,
  snapshot: true,
  enableEvents: false,
  enableTracking: false,
};

const probeOf = (families: FamilyProbe[], bufferSize = 16 * MIB): TrackingProbe => ({
  families,
  bufferSize,
});
const BOTH_EVENTS = probeOf([
  { family: 4, seen: 'event', ms: 21 },
  { family: 6, seen: 'event', ms: 23 },
]);
const NONE = probeOf([
  { family: 4, seen: 'none', others: 0 },
  { family: 6, seen: 'none', others: 0 },
]);

const CONNTRACKER = { name: 'conntracker', uid: 998, gid: 998 };

const LIVE: LiveFacts = {
  addon: { ok: true, value: '/x/ct_native.node' },
  account: { ok: true, value: CONNTRACKER },
  probe: { ok: true, value: BOTH_EVENTS },
};

function finding(
  id: string,
  facts: Partial<PreflightFacts> = {},
  live: Partial<LiveFacts> = {},
  opts: Partial<PreflightOptions> = {},
): Finding {
  const all = evaluatePreflight({ ...FACTS, ...facts }, { ...LIVE, ...live }, { ...OPTS, ...opts });
  const f = all.find((x) => x.id === id);
  if (f === undefined) throw new Error(`no finding ${id}`);
  return f;
}

t.test('the proc tree: sysctls, CapEff bit 12, module from /sys or from its sysctls', (t) => {
  const tree = fakeTree(t);
  t.strictSame(readPreflightFacts(tree.proc, tree.sys, 0), {
    netns: 'net:[4026532001]',
    conntrackLoaded: true,
    euid: 0,
    netAdmin: true,
    events: 2,
    timestamp: 0,
    acct: 1,
    rmemMax: 4194304,
    count: 3,
  });
  const capOnly = fakeTree(t, { capEff: CAP_NET_ADMIN_ONLY });
  t.equal(readPreflightFacts(capOnly.proc, capOnly.sys, 1000).netAdmin, true, 'bit 12 alone');
  const noCap = fakeTree(t, { capEff: 'ffffffffffffefff' });
  t.equal(readPreflightFacts(noCap.proc, noCap.sys, 1000).netAdmin, false, 'all but bit 12');

  const unloaded = fakeTree(t, { module: false, sysctls: { 'net/core/rmem_max': '212992' } });
  const f = readPreflightFacts(unloaded.proc, unloaded.sys, 0);
  t.equal(f.conntrackLoaded, false, 'no /sys/module/nf_conntrack and no nf_conntrack_max');
  t.strictSame(
    [f.events, f.timestamp, f.acct, f.count, f.rmemMax],
    [null, null, null, null, 212992],
    'the netfilter sysctls are absent, the core one is read',
  );
  const sysctlOnly = fakeTree(t, { module: false });
  t.equal(
    readPreflightFacts(sysctlOnly.proc, sysctlOnly.sys, 0).conntrackLoaded,
    true,
    'nf_conntrack_max alone says it is loaded (a /sys without modules)',
  );
  const garbage = fakeTree(t, { sysctls: { 'net/netfilter/nf_conntrack_events': 'two' } });
  t.equal(readPreflightFacts(garbage.proc, garbage.sys, 0).events, null, 'a non-number is null');
  t.end();
});

t.test('module and privileges: each failure names its fix', (t) => {
  t.match(finding('module', { conntrackLoaded: false }), {
    status: 'fail',
    fix: 'modprobe nf_conntrack',
  });
  t.equal(finding('module').status, 'ok');
  t.match(finding('privileges'), { status: 'ok', what: /root.*drops to --user/ });
  t.match(finding('privileges', { euid: 1000, netAdmin: true }), {
    status: 'ok',
    what: /uid 1000 with CAP_NET_ADMIN/,
  });
  t.match(finding('privileges', { euid: 1000, netAdmin: false }), {
    status: 'fail',
    what: /uid 1000 without CAP_NET_ADMIN/,
    fix: /sudo ct-record/,
  });
  t.match(
    finding('addon', {}, { addon: { ok: false, error: 'the conntrack addon is not built' } }),
    {
      status: 'fail',
      what: 'the conntrack addon is not built',
      fix: /npm rebuild conntracker/,
    },
  );
  t.end();
});

t.test('nf_conntrack_events: 1 ok, 2 warn with the dump, fail without it, 0 fail', (t) => {
  const cases: [number | null, Partial<PreflightOptions>, Finding['status'], RegExp][] = [
    [1, {}, 'ok', /=1: every flow sends events/],
    [2, {}, 'warn', /=2: .*dumps the table at start.*snapshot entries/],
    [2, { snapshot: false }, 'fail', /=2 and --no-snapshot: .*would be missing/],
    [2, { enableEvents: true }, 'ok', /=2 now; --enable-events sets it to 1/],
    [0, {}, 'fail', /=0: the kernel sends no conntrack events at all/],
    [0, { enableEvents: true, snapshot: false }, 'ok', /=0 now; --enable-events/],
    [null, {}, 'warn', /cannot be read/],
    [7, {}, 'warn', /=7 is not a value/],
  ];
  for (const [events, opts, status, what] of cases) {
    const f = finding('events', { events }, {}, opts);
    t.match(f, { status, what }, `events=${events} ${JSON.stringify(opts)}: ${status}`);
  }
  t.match(finding('events', { events: 0 }).fix, /--enable-events.*nf_conntrack_events=1/);
  t.match(finding('events', { events: 2 }, {}, { snapshot: false }).fix, /--no-snapshot/);
  t.end();
});

t.test(
  'tracking: the probe decides; a missing family and an unknown answer are told apart',
  (t) => {
    t.match(finding('tracking'), {
      status: 'ok',
      what: /is active .*\(IPv4 and IPv6\) were seen as NEW events after 23 ms/,
    });
    const notActive = finding('tracking', {}, { probe: { ok: true, value: NONE } });
    t.equal(notActive.status, 'fail');
    t.match(notActive.what, /^conntrack is not active in this network namespace/);
    const fixLines = (notActive.fix ?? '').split('\n');
    t.match(fixLines[0], /^ct-record --enable-tracking/, 'the fix offers --enable-tracking first');
    t.strictSame(fixLines.slice(1), TRACKING_RULES, 'then the nft commands of --help');

    const v4only = probeOf([
      { family: 4, seen: 'event', ms: 5 },
      { family: 6, seen: 'none', others: 0 },
    ]);
    t.match(finding('tracking', {}, { probe: { ok: true, value: v4only } }), {
      status: 'fail',
      what: /tracks IPv4 but not IPv6 .*IPv6 flows would not be recorded/,
    });
    const viaDump = probeOf([
      { family: 4, seen: 'table', others: 0 },
      { family: 6, seen: 'table', others: 0 },
    ]);
    t.match(finding('tracking', {}, { probe: { ok: true, value: viaDump } }), {
      status: 'ok',
      what: /found in a table dump \(no NEW event: nf_conntrack_events=0\)/,
    });
    const noV6 = probeOf([
      { family: 4, seen: 'event', ms: 4 },
      { family: 6, seen: 'unavailable', why: 'EADDRNOTAVAIL' },
    ]);
    t.match(finding('tracking', {}, { probe: { ok: true, value: noV6 } }), {
      status: 'ok',
      what: /\(IPv4\) were seen .*IPv6 is not available here \(EADDRNOTAVAIL\)/,
    });
    const exempt = probeOf([
      { family: 4, seen: 'none', others: 12 },
      { family: 6, seen: 'event', ms: 4 },
    ]);
    t.match(finding('tracking', {}, { probe: { ok: true, value: exempt } }), {
      status: 'warn',
      what: /not tracked \(IPv4\), yet the table holds 12 entries .*notrack/,
      fix: /grep -w -e notrack -e ct/,
    });
    const loDown = probeOf([
      { family: 4, seen: 'unavailable', why: 'EADDRNOTAVAIL' },
      { family: 6, seen: 'unavailable', why: 'EADDRNOTAVAIL' },
    ]);
    t.match(finding('tracking', {}, { probe: { ok: true, value: loDown } }), {
      status: 'warn',
      fix: 'ip link set lo up',
    });
    t.match(
      finding('tracking', { count: 1 }, { probe: { ok: false, error: 'EPERM — run as root' } }),
      {
        status: 'warn',
        what: /unknown: the probe failed \(EPERM — run as root\); the table holds 1 entry$/,
      },
    );
    t.match(finding('tracking', { conntrackLoaded: false }, { probe: undefined }), {
      status: 'fail',
      what: /nf_conntrack is not loaded/,
    });
    t.end();
  },
);

t.test(
  'tracking with --enable-tracking: ok only when its table made the probe flows tracked',
  (t) => {
    const opts = { enableTracking: true };
    const off = { probe: { ok: true as const, value: NONE } };
    t.match(
      finding('tracking', {}, { ...off, withTracking: { ok: true, value: BOTH_EVENTS } }, opts),
      {
        status: 'ok',
        what: /^no rule needs conntrack for IPv4 and IPv6 here yet; --enable-tracking adds table inet conntracker_track_PID .*seen as NEW events/,
      },
    );
    t.match(finding('tracking', {}, { ...off, withTracking: { ok: true, value: NONE } }, opts), {
      status: 'fail',
      what: /--enable-tracking did not help: the probe flows were still not tracked/,
    });
    t.match(
      finding(
        'tracking',
        {},
        { ...off, withTracking: { ok: false, error: 'nft is not installed' } },
        opts,
      ),
      { status: 'fail', what: /--enable-tracking did not help: nft is not installed/ },
    );
    t.end();
  },
);

t.test('rmem: the grant the kernel gave decides; without a probe, privilege and rmem_max', (t) => {
  t.match(finding('rmem'), {
    status: 'ok',
    what: /-b 8 MiB\) is granted in full: the kernel gave 16777216 bytes, past net.core.rmem_max=4194304/,
  });
  t.match(finding('rmem', {}, { probe: { ok: true, value: probeOf([], 8 * MIB) } }), {
    status: 'warn',
    what: /is capped: the kernel gave 8388608 bytes/,
    fix: /sysctl -w net.core.rmem_max=8388608/,
  });
  const noProbe = { probe: { ok: false as const, error: 'EPERM' } };
  t.match(finding('rmem', {}, noProbe), { status: 'ok', what: /forced past .* SO_RCVBUFFORCE/ });
  t.match(finding('rmem', { euid: 1000, netAdmin: false }, noProbe), {
    status: 'warn',
    what: /exceeds net.core.rmem_max=4194304/,
  });
  t.match(finding('rmem', { euid: 1000, netAdmin: false }, noProbe, { bufferSize: MIB }), {
    status: 'ok',
    what: /-b 1 MiB\) fits within/,
  });
  t.end();
});

t.test('timestamp and acct: 0 warns with the sysctl that fixes it, as the report would', (t) => {
  t.match(finding('timestamp', { timestamp: 0 }), {
    status: 'warn',
    what: /an ended flow is reported 10–40 s late/,
    fix: 'sysctl -w net.netfilter.nf_conntrack_timestamp=1',
  });
  t.match(finding('acct', { acct: 0 }), {
    status: 'warn',
    what: /no packet or byte counts/,
    fix: 'sysctl -w net.netfilter.nf_conntrack_acct=1',
  });
  t.equal(finding('timestamp').status, 'ok');
  t.equal(finding('acct').status, 'ok');
  t.end();
});

t.test('user: a missing conntracker account fails with the useradd command or --user', (t) => {
  t.match(finding('user'), {
    status: 'ok',
    what: /drops to user conntracker \(uid 998, gid 998\), an account of its own/,
  });
  const missing = finding('user', {}, { account: { ok: true, value: null } });
  t.match(missing, {
    status: 'fail',
    what: /the default --user account conntracker does not exist: ct-record would refuse to start/,
  });
  t.equal(
    missing.fix,
    'useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin conntracker\nor pass --user USER to run as an existing account',
  );
  t.match(finding('user', {}, { account: { ok: true, value: null } }, { user: 'ghost' }), {
    status: 'fail',
    what: /unknown user 'ghost' for --user/,
  });
  t.match(
    finding(
      'user',
      {},
      { account: { ok: true, value: { name: 'nobody', uid: 65534, gid: 65534 } } },
      { user: 'nobody' },
    ),
    { status: 'warn', what: /nobody is shared/, fix: /useradd --system/ },
  );
  t.match(finding('user', {}, { account: { ok: false, error: 'EIO' } }), {
    status: 'warn',
    what: /cannot look up user conntracker: EIO/,
  });
  t.match(finding('user', { euid: 1000 }, { account: undefined }), {
    status: 'ok',
    what: /uid 1000, not root: no privilege drop/,
  });
  t.end();
});

t.test('runPreflight: looks up the --user account, or the default one, as root', async (t) => {
  const tree = fakeTree(t);
  const asked: string[] = [];
  const src = {
    proc: tree.proc,
    sys: tree.sys,
    euid: 0,
    loadAddon: () => '/x/ct_native.node',
    probe: async () => BOTH_EVENTS,
    lookupUser: (name: string) => {
      asked.push(name);
      return null;
    },
  };
  const { findings } = await runPreflight(OPTS, src);
  t.match(
    findings.find((f) => f.id === 'user'),
    { status: 'fail', fix: /^useradd --system/ },
  );
  t.equal(preflightExit(findings), 1, 'the recording would not start');
  await runPreflight({ ...OPTS, user: 'nobody' }, src);
  t.strictSame(asked, ['conntracker', 'nobody']);
});

t.test(
  'runCheck: prints the findings of this namespace and returns their exit status',
  async (t) => {
    const tree = fakeTree(t);
    let printed = '';
    const out = { write: (s: string) => (printed += s) };
    const src = {
      proc: tree.proc,
      sys: tree.sys,
      euid: 0,
      loadAddon: () => '/x/ct_native.node',
      probe: async () => BOTH_EVENTS,
      lookupUser: () => null,
    };
    const code = await runCheck(OPTS, out, src);
    t.equal(code, 1, 'the missing default account fails the check');
    t.match(printed, /^ct-record --check: network namespace /, 'the heading');
    t.match(printed, /\nrecording would be incomplete \(1 failed, /, 'the summary line');
  },
);

t.test('exit 0 when nothing fails (warnings included), 1 on any failure', (t) => {
  const all = evaluatePreflight({ ...FACTS, events: 2, timestamp: 0 }, LIVE, OPTS);
  t.strictSame(
    all.map((f) => f.id),
    ['module', 'privileges', 'user', 'addon', 'events', 'tracking', 'rmem', 'timestamp', 'acct'],
    'the documented order',
  );
  t.ok(all.some((f) => f.status === 'warn'));
  t.equal(preflightExit(all), 0, 'events=2 with the dump and timestamps off: still complete');
  const failed = evaluatePreflight(FACTS, { ...LIVE, probe: { ok: true, value: NONE } }, OPTS);
  t.equal(preflightExit(failed), 1);
  t.end();
});

t.test('output: one line per finding, the fix indented below, a summary line', (t) => {
  const text = formatPreflight('net:[1]', [
    { id: 'module', status: 'ok', what: 'nf_conntrack is loaded' },
    { id: 'acct', status: 'warn', what: 'acct is off', fix: 'sysctl -w x=1' },
    { id: 'tracking', status: 'fail', what: 'not active', fix: 'first\nsecond' },
  ]);
  t.equal(
    text,
    [
      'ct-record --check: network namespace net:[1]',
      'ok   nf_conntrack is loaded',
      'WARN acct is off',
      '     fix: sysctl -w x=1',
      'FAIL not active',
      '     fix: first',
      '          second',
      'recording would be incomplete (1 failed, 1 warnings, 1 ok): apply the fixes above',
      '',
    ].join('\n'),
  );
  t.match(
    formatPreflight('net:[1]', [{ id: 'module', status: 'ok', what: 'x' }]),
    /\nrecording would be complete \(0 failed, 0 warnings, 1 ok\)\n$/,
  );
  t.end();
});

t.test(
  'runPreflight: the --enable-tracking table is removed after its probe, even a failed one',
  async (t) => {
    const tree = fakeTree(t);
    const calls: string[] = [];
    let probes = 0;
    const src = {
      proc: tree.proc,
      sys: tree.sys,
      euid: 0,
      loadAddon: () => '/x/ct_native.node',
      probe: async (size: number) => {
        calls.push(`probe ${size}`);
        probes++;
        if (probes === 1) return NONE;
        throw new Error('reader failed');
      },
      enableTracking: () => {
        calls.push('add table');
        return {
          table: 'conntracker_track_1',
          stop: async () => {
            calls.push('remove table');
          },
        };
      },
    };
    const { facts, findings } = await runPreflight({ ...OPTS, enableTracking: true }, src);
    t.equal(facts.netns, 'net:[4026532001]');
    t.strictSame(calls, [`probe ${8 * MIB}`, 'add table', `probe ${8 * MIB}`, 'remove table']);
    t.match(
      findings.find((f) => f.id === 'tracking'),
      {
        status: 'fail',
        what: /--enable-tracking did not help: reader failed/,
      },
    );

    calls.length = 0;
    probes = 0;
    await runPreflight(OPTS, src);
    t.strictSame(calls, [`probe ${8 * MIB}`], 'without --enable-tracking no table is added');

    calls.length = 0;
    const unloaded = fakeTree(t, { module: false, sysctls: {} });
    const r = await runPreflight(OPTS, {
      ...src,
      proc: unloaded.proc,
      sys: unloaded.sys,
      loadAddon: () => {
        throw new Error('the conntrack addon is not built (no file)');
      },
    });
    t.strictSame(calls, [], 'no probe without nf_conntrack: nothing could be tracked');
    t.match(
      r.findings.find((f) => f.id === 'addon'),
      {
        status: 'fail',
        what: 'the conntrack addon is not built (no file)',
      },
    );
  },
);

t.test('preflight: with --netns the fixes run their commands in that namespace', (t) => {
  t.equal(netnsRunner(undefined), undefined);
  t.equal(netnsRunner('fw'), 'ip netns exec fw');
  t.equal(netnsRunner('/proc/42/ns/net'), 'nsenter --net=/proc/42/ns/net');
  const text = formatPreflight(
    'net:[1]',
    [
      {
        id: 'events',
        status: 'fail',
        what: 'x',
        fix: 'ct-record --enable-events, or sysctl -w net.netfilter.nf_conntrack_events=1',
      },
      {
        id: 'tracking',
        status: 'fail',
        what: 'y',
        fix: 'add a rule:\nnft add table inet conntracker',
      },
      { id: 'lo', status: 'fail', what: 'z', fix: 'ip link set lo up' },
    ],
    netnsRunner('fw'),
  );
  t.match(text, 'ct-record --enable-events, or ip netns exec fw sysctl -w net.netfilter');
  t.match(text, '\n          ip netns exec fw nft add table inet conntracker\n');
  t.match(text, 'fix: ip netns exec fw ip link set lo up\n');
  t.notMatch(text, 'ip netns exec fw ct-record', 'ct-record itself already takes --netns');
  t.end();
});
