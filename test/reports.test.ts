// Every report ct-analyze writes, byte for byte as recorded in test/fixtures/reports: a change of code layout changes no output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../common/package.js';

const GOLDEN = join(PACKAGE_ROOT, 'test', 'fixtures', 'reports');
/** CT_WRITE_REPORTS=1 records the golden files anew (after a deliberate change of output). */
const WRITE = process.env.CT_WRITE_REPORTS === '1';

const work = mkdtempSync(join(tmpdir(), 'ct-reports-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const LAN = 'samples/lan.mpk';
const NAT = 'samples/nat-router.mpk';
const GAPS = 'test/fixtures/v1/gaps-checkpoints-0.1.0.mpk';
const V1 = ['lan', 'nat-router', 'gaps-checkpoints'].map((n) => `test/fixtures/v1/${n}-0.1.0.mpk`);
/** Work files the cases write and read: @NAME in an argument is join(work, NAME). */
const KEY = '@redact.key';
const CAPTURE = '@capture.txt';

/** conntrack v1.4.7 -E -o timestamp output from a namespace, as test/analyzer/import/conntrack-text.test.ts has it. */
const CAPTURE_TEXT = [
  '[1795770432.386744]\t    [NEW] ipv4     2 icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=11300 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=11300 id=3387932844',
  '[1795770432.386799]\t [UPDATE] ipv4     2 icmp     1 30 src=10.77.0.1 dst=10.77.0.2 type=8 code=0 id=11300 src=10.77.0.2 dst=10.77.0.1 type=0 code=0 id=11300 id=3387932844',
  '[1795770432.391577]\t    [NEW] ipv6     10 icmpv6   58 30 src=fd77::1 dst=fd77::2 type=128 code=0 id=11301 [UNREPLIED] src=fd77::2 dst=fd77::1 type=129 code=0 id=11301 id=124452780',
  '[1795770432.877226]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=10.77.0.1 dst=10.77.0.2 sport=51908 dport=80 src=10.77.0.2 dst=10.77.0.1 sport=80 dport=51908 [ASSURED] id=274855872',
  '[1795770433.969605]\t[DESTROY] ipv4     2 udp      17 28 src=10.77.0.1 dst=10.77.0.2 sport=41757 dport=514 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=514 dport=41757 id=2218844965 [USERSPACE] portid=2628762932 progname=conntrack',
  'conntrack v1.4.7 (conntrack-tools): 5 flow events have been shown.',
  '',
].join('\n');

/** Each case: a name (its golden file) and the ct-analyze commands it runs, in order; the last one's output is compared. */
const cases: Array<[string, ...string[][]]> = [];
for (const [name, journal] of [
  ['lan', LAN],
  ['nat-router', NAT],
  ['gaps', GAPS],
] as const) {
  for (const format of ['text', 'json', 'csv', 'md', 'html']) {
    cases.push([`analyze-${name}.${format}`, ['--format', format, journal]]);
  }
  cases.push([`verify-${name}.text`, ['verify', journal]]);
  cases.push([`verify-${name}.json`, ['verify', '--format', 'json', journal]]);
  cases.push([`rules-${name}.nft`, ['rules', journal]]);
  cases.push([`rules-${name}.iptables`, ['rules', '--format', 'iptables', journal]]);
  cases.push([
    `check-${name}-own-rules.text`,
    ['rules', '-o', `@${name}.nft`, journal],
    ['check', '--ruleset', `@${name}.nft`, journal],
  ]);
  cases.push([
    `check-${name}-own-iptables.json`,
    ['rules', '--format', 'iptables', '--family', '4', '-o', `@${name}.v4`, journal],
    ['check', '--format', 'json', '--ruleset', `@${name}.v4`, journal],
  ]);
}
cases.push(
  ['analyze-merged-show.text', ['--show', 'direction,nat,hosts', LAN, NAT]],
  ['analyze-merged.json', ['--format', 'json', NAT, LAN]],
  ['analyze-v1.text', ['--show', 'direction,nat,hosts', ...V1]],
  ['analyze-nat-none.text', ['--collapse', 'none', NAT]],
  ['analyze-nat-ephemeral.text', ['--collapse', 'ephemeral', '--show', 'nat', NAT]],
  ['analyze-nat-range.csv', ['--collapse', '30000-65535', '--format', 'csv', NAT]],
  [
    'analyze-gaps-window.text',
    ['--since', '2025-11-27T07:00:00Z', '--until', '2025-11-27T07:53:20.000Z', GAPS],
  ],
  ['verify-all.text', ['verify', LAN, NAT, ...V1]],
  ['diff-lan-nat.text', ['diff', LAN, NAT]],
  ['diff-nat-lan.json', ['diff', '--format', 'json', NAT, LAN]],
  [
    'rules-nat-reject-wide.nft',
    ['rules', '--policy', 'drop', '--max-prefix4', '16', '--max-prefix6', '48', NAT],
  ],
  [
    'import-capture.text',
    ['import', CAPTURE, '-o', '@capture.mpk'],
    ['--show', 'direction', '@capture.mpk'],
  ],
  [
    'redact-nat.text',
    ['redact', '--key', KEY, '-o', '@nat-redacted.mpk', NAT],
    ['--show', 'direction,nat,hosts', '@nat-redacted.mpk'],
  ],
  [
    'redact-nat-verify.text',
    ['redact', '--key', KEY, '-o', '@nat-redacted2.mpk', NAT],
    ['verify', '@nat-redacted2.mpk'],
  ],
  ['error-missing.text', ['no-such-journal.mpk']],
  ['error-usage.text', ['--collapse', 'sideways', LAN]],
);

writeFileSync(join(work, 'redact.key'), Buffer.alloc(32, 7), { mode: 0o600 });
writeFileSync(join(work, 'capture.txt'), CAPTURE_TEXT);

/** Runs ct-analyze as users do (the built CLI, from the package root, no terminal, no colour). */
function ctAnalyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = args.map((a) => (a.startsWith('@') ? join(work, a.slice(1)) : a));
  const r = spawnSync(process.execPath, ['dist/analyzer/cli.js', ...argv], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '', TZ: 'UTC' },
  });
  // Work paths differ between runs: the golden files name them @NAME.
  const local = (s: string) => s.split(`${work}/`).join('@');
  return { status: r.status, stdout: local(r.stdout), stderr: local(r.stderr) };
}

if (WRITE) mkdirSync(GOLDEN, { recursive: true });
for (const [name, ...commands] of cases) {
  t.test(`reports: ${name} is byte for byte its golden file`, (t) => {
    let last = { status: null as number | null, stdout: '', stderr: '' };
    for (const args of commands) last = ctAnalyze(args);
    const got = `exit ${last.status}\n--- stdout\n${last.stdout}--- stderr\n${last.stderr}`;
    const file = join(GOLDEN, `${name}.out`);
    if (WRITE) writeFileSync(file, got);
    t.ok(
      existsSync(file),
      `${file} exists (CT_WRITE_REPORTS=1 npx tap test/reports.test.ts records it)`,
    );
    t.equal(got, existsSync(file) ? readFileSync(file, 'utf8') : '', name);
    t.end();
  });
}
