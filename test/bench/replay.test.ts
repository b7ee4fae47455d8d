// bench/replay.sh smoke test: a small run passes its fairness check and prints every figure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { benchCopy, grab, NUM, runBench } from '../helpers/bench.js';
import { tempDir } from '../helpers/journals.js';

const SCRIPT = join(PACKAGE_ROOT, 'bench', 'replay.sh');
const COMPARE = join(PACKAGE_ROOT, 'bench', 'replay-compare.mjs');
const ANALYZER = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const EVENTS = 20_000;
const FLOWS = 2_000;

if (!existsSync(ANALYZER)) throw new Error(`${ANALYZER} is missing: run \`npm run build\` first`);

/**
 * One line of each shape conntrack v1.4.7 printed for `conntrack -E -o timestamp` (kernel 6.18,
 * nf_conntrack_acct=1) in a namespace pair: handshakes, FIN and RST closes, a UDP stream, pings,
 * and unanswered SYNs, datagrams and pings. Captured byte for byte (timeouts were shortened).
 */
const REAL = [
  '[1795772308.690900]\t    [NEW] tcp      6 2 SYN_SENT src=fd91::1 dst=fd91::2 sport=38070 dport=80 [UNREPLIED] src=fd91::2 dst=fd91::1 sport=80 dport=38070',
  '[1795772308.690926]\t [UPDATE] tcp      6 60 SYN_RECV src=fd91::1 dst=fd91::2 sport=38070 dport=80 src=fd91::2 dst=fd91::1 sport=80 dport=38070',
  '[1795772308.690935]\t [UPDATE] tcp      6 432000 ESTABLISHED src=fd91::1 dst=fd91::2 sport=38070 dport=80 src=fd91::2 dst=fd91::1 sport=80 dport=38070 [ASSURED]',
  '[1795772195.267447]\t [UPDATE] tcp      6 120 FIN_WAIT src=10.89.0.1 dst=10.89.0.2 sport=51190 dport=80 src=10.89.0.2 dst=10.89.0.1 sport=80 dport=51190 [ASSURED]',
  '[1795772195.267487]\t [UPDATE] tcp      6 30 LAST_ACK src=10.89.0.1 dst=10.89.0.2 sport=51190 dport=80 src=10.89.0.2 dst=10.89.0.1 sport=80 dport=51190 [ASSURED]',
  '[1795772195.267497]\t [UPDATE] tcp      6 2 TIME_WAIT src=10.89.0.1 dst=10.89.0.2 sport=51190 dport=80 src=10.89.0.2 dst=10.89.0.1 sport=80 dport=51190 [ASSURED]',
  '[1795772308.899439]\t [UPDATE] tcp      6 2 CLOSE src=fd91::1 dst=fd91::2 sport=38070 dport=80 src=fd91::2 dst=fd91::1 sport=80 dport=38070 [ASSURED]',
  '[1795772198.675268]\t[DESTROY] tcp      6 TIME_WAIT src=10.89.0.1 dst=10.89.0.2 sport=51190 dport=80 packets=5 bytes=274 src=10.89.0.2 dst=10.89.0.1 sport=80 dport=51190 packets=5 bytes=297 [ASSURED]',
  '[1795772319.507427]\t[DESTROY] tcp      6 CLOSE src=10.91.0.1 dst=10.91.0.2 sport=47592 dport=80 packets=4 bytes=217 src=10.91.0.2 dst=10.91.0.1 sport=80 dport=47592 packets=2 bytes=112 [ASSURED]',
  '[1795772258.069185]\t[DESTROY] tcp      6 SYN_SENT src=fd89::1 dst=fd89::2 sport=51912 dport=82 packets=1 bytes=80 [UNREPLIED] src=fd89::2 dst=fd89::1 sport=82 dport=51912 packets=0 bytes=0',
  '[1795772305.683982]\t    [NEW] udp      17 10 src=fd91::1 dst=fd91::2 sport=46573 dport=1194 [UNREPLIED] src=fd91::2 dst=fd91::1 sport=1194 dport=46573',
  '[1795772305.685332]\t [UPDATE] udp      17 10 src=fd91::1 dst=fd91::2 sport=46573 dport=1194 src=fd91::2 dst=fd91::1 sport=1194 dport=46573',
  '[1795772308.688245]\t [UPDATE] udp      17 2 src=fd91::1 dst=fd91::2 sport=46573 dport=1194 src=fd91::2 dst=fd91::1 sport=1194 dport=46573 [ASSURED]',
  '[1795772319.509996]\t[DESTROY] udp      17 src=10.90.0.1 dst=10.90.0.2 sport=35560 dport=1194 packets=1 bytes=32 src=10.90.0.2 dst=10.90.0.1 sport=1194 dport=35560 packets=1 bytes=32',
  '[1795772319.507437]\t[DESTROY] udp      17 src=fd91::1 dst=fd91::2 sport=46573 dport=1194 packets=2 bytes=104 src=fd91::2 dst=fd91::1 sport=1194 dport=46573 packets=2 bytes=104 [ASSURED]',
  '[1795772075.796512]\t[DESTROY] udp      17 src=10.88.0.1 dst=10.88.0.2 sport=43321 dport=54 packets=1 bytes=33 [UNREPLIED] src=10.88.0.2 dst=10.88.0.1 sport=54 dport=43321 packets=0 bytes=0',
  '[1795772199.438405]\t    [NEW] icmp     1 2 src=10.89.0.1 dst=10.89.0.2 type=8 code=0 id=5262 [UNREPLIED] src=10.89.0.2 dst=10.89.0.1 type=0 code=0 id=5262',
  '[1795772050.527805]\t [UPDATE] icmp     1 2 src=10.88.0.1 dst=10.88.0.2 type=8 code=0 id=3503 src=10.88.0.2 dst=10.88.0.1 type=0 code=0 id=3503',
  '[1795772075.795511]\t[DESTROY] icmp     1 src=10.88.0.1 dst=10.88.0.2 type=8 code=0 id=3503 packets=1 bytes=84 src=10.88.0.2 dst=10.88.0.1 type=0 code=0 id=3503 packets=1 bytes=84',
  '[1795772258.067467]\t[DESTROY] icmp     1 src=10.89.0.1 dst=10.89.0.2 type=8 code=0 id=5262 packets=1 bytes=84 [UNREPLIED] src=10.89.0.2 dst=10.89.0.1 type=0 code=0 id=5262 packets=0 bytes=0',
  '[1795772201.450507]\t    [NEW] icmpv6   58 2 src=fd89::1 dst=fd89::2 type=128 code=0 id=5264 [UNREPLIED] src=fd89::2 dst=fd89::1 type=129 code=0 id=5264',
  '[1795772050.532133]\t [UPDATE] icmpv6   58 2 src=fd88::1 dst=fd88::2 type=128 code=0 id=3504 src=fd88::2 dst=fd88::1 type=129 code=0 id=3504',
  '[1795772075.795543]\t[DESTROY] icmpv6   58 src=fd88::1 dst=fd88::2 type=128 code=0 id=3504 packets=1 bytes=104 src=fd88::2 dst=fd88::1 type=129 code=0 id=3504 packets=1 bytes=104',
  '[1795772258.067479]\t[DESTROY] icmpv6   58 src=fd89::1 dst=fd89::2 type=128 code=0 id=5264 packets=1 bytes=1048 [UNREPLIED] src=fd89::2 dst=fd89::1 type=129 code=0 id=5264 packets=0 bytes=0',
];

/** A line with its addresses and numbers blanked: what is left is conntrack's layout. */
const shape = (line: string) => line.replace(/(src|dst)=[0-9a-f:.]+/g, '$1=A').replace(/\d+/g, 'N');

const bench = (tmp: string, args: string[], script = SCRIPT) =>
  runBench(script, tmp, args, 120_000);

function analyze(args: string[]): string[] {
  const res = spawnSync(process.execPath, [ANALYZER, ...args], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`ct-analyze ${args.join(' ')}: ${res.stderr}`);
  return res.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

t.test(
  'bench/replay: 20,000 events over 2,000 flows pass the fairness check and print every figure',
  async (t) => {
    const tmp = tempDir(t, 'bench-replay');
    const args = [String(EVENTS), '--flows', String(FLOWS), '--runs', '1', '--no-build'];
    const run = bench(tmp, [...args, '--keep']);
    t.equal(run.code, 0, `exit 0\n${run.out}\n${run.err}`);
    const out = run.out;

    const answered = Number(grab(out, /the events reach 2000 of the 2000 flows, (\d+) of them/));
    t.ok(answered > FLOWS * 0.9 && answered < FLOWS, 'about 5 % of the flows are never answered');
    t.match(
      out,
      new RegExp(
        `^fairness: same ${FLOWS} flows \\(${answered} confirmed\\) from ct-analyze and awk\\|sort, as generated$`,
        'm',
      ),
      'both tools found exactly the flows and confirmations the generator made',
    );
    for (const tool of ['ct-analyze', 'awk\\|sort']) {
      t.match(
        out,
        new RegExp(`^1 +${tool} +${NUM} +${NUM} +${NUM} +\\d+$`, 'm'),
        `${tool} run line`,
      );
      t.match(
        out,
        new RegExp(
          `^  ${tool}: ${NUM} events/s \\(wall ${NUM} s, cpu ${NUM} s\\), peak RSS ${NUM} MiB$`,
          'm',
        ),
        `${tool} median line`,
      );
    }
    t.match(
      out,
      new RegExp(
        `^  ratio ct-analyze / awk\\|sort: ${NUM} \\(events/s\\); ${NUM} in CPU seconds$`,
        'm',
      ),
    );
    t.match(
      out,
      new RegExp(
        `^  journal: ${NUM} B/event; text: ${NUM} B/event; format 1: ${NUM} B/event$`,
        'm',
      ),
    );
    t.match(out, new RegExp(`^1 +ct-analyze-v1 +${NUM} +${NUM} +${NUM} +\\d+$`, 'm'));
    t.match(
      out,
      new RegExp(
        `^  ratio format 2 / format 1: ${NUM} \\(events/s\\); ${NUM} in CPU seconds$`,
        'm',
      ),
      'format 2 is timed against format 1 in the same runs',
    );
    t.match(
      out,
      new RegExp(
        `^  format 2 replays at least as fast as format 1 at ${EVENTS} events \\(issue 15\\): (met|NOT met) \\(${NUM}x in events/s\\)$`,
        'm',
      ),
    );
    t.match(
      out,
      new RegExp(
        `^  >= 10x the awk\\|sort pipeline in events/s at ${EVENTS} events: (met|NOT met) \\(${EVENTS}: ${NUM}x\\)$`,
        'm',
      ),
    );
    t.match(out, /^ {2}>= 3 M events\/s at 10000000 events: not measured /m, 'no 10 M size here');
    t.match(out, /^ {2}peak RSS flat within 10 %: not measured \(one size only\)$/m);
    t.match(
      out,
      /^baseline: LC_ALL=C mawk -f bench\/replay.awk TEXT \| LC_ALL=C sort -u \(mawk \d/m,
    );

    const journal = grab(out, /^data: journal (\S+) \(/m);
    const text = grab(out, /^data: text (\S+) \(/m);
    const lines = readFileSync(text, 'utf8').split('\n');
    t.equal(lines.pop(), '', 'the text ends with a newline');
    t.equal(lines.length, EVENTS, 'one text line per event');

    const real = new Set(REAL.map(shape));
    const foreign = [...new Set(lines.map(shape))].filter((s) => !real.has(s));
    t.strictSame(foreign, [], 'every line has the layout of a line conntrack 1.4.7 printed');
    t.equal(new Set(lines.map(shape)).size, REAL.length, 'and every captured layout occurs');

    // ct-analyze's own parser of conntrack text agrees with the journal, event for event.
    const imported = join(tmp, 'imported.mpk');
    const imp = spawnSync(process.execPath, [ANALYZER, 'import', text, '-o', imported], {
      encoding: 'utf8',
    });
    t.equal(imp.status, 0, imp.stderr);
    t.notMatch(imp.stderr, /warning/, 'every generated line is readable conntrack text');
    const fromJournal = analyze([journal]);
    t.equal(fromJournal.length, FLOWS);
    t.strictSame(analyze([imported]), fromJournal, 'import of the text = the journal');
    t.strictSame(
      analyze(['--collapse', 'none', imported]),
      analyze(['--collapse', 'none', journal]),
      'also with every real source port',
    );

    // Again without --keep: the data is reused, and this run leaves nothing of its own behind.
    const runsBefore = readdirSync(tmp).filter((f) => f.startsWith('ct-bench-replay-run.'));
    const again = bench(tmp, args);
    t.equal(again.code, 0, again.err);
    t.match(again.out, /^data: reusing /m);
    t.match(again.out, /^fairness: same 2000 flows/m);
    t.strictSame(
      readdirSync(tmp).filter((f) => f.startsWith('ct-bench-replay-run.')),
      runsBefore,
      'its work dir is gone',
    );
    t.ok(existsSync(journal), 'the kept data is still there');
  },
);

t.test(
  'bench/replay: the fairness check fails on one flow confirmed by one tool only',
  async (t) => {
    const dir = tempDir(t, 'bench-compare');
    const ct = join(dir, 'ct.txt');
    const awk = join(dir, 'awk.txt');
    writeFileSync(
      ct,
      [
        '# conntracker flows from x.mpk',
        ' TCPv4 [           0] src = 10.1.0.2 (port=1024) to dst = 10.20.0.1 (port=443) (confirmed)',
        ' UDPv6 [           0] src = 2001:db8::1 (port=123) to dst = fd00::2:0:0:5 (port=123)',
        'ICMPv6 [           0] src = 2001:db8::1 to dst = fd00::5 (type=128 | code=0) (confirmed)',
        '',
      ].join('\n'),
    );
    const compare = (awkText: string) => {
      writeFileSync(awk, awkText);
      return spawnSync(process.execPath, [COMPARE, ct, awk], { encoding: 'utf8' });
    };
    const same = compare(
      [
        'icmpv6 2001:db8:0:0:0:0:0:1 fd00::5 128 0 1',
        'tcp 10.1.0.2 10.20.0.1 1024 443 1',
        'udp 2001:0db8::1 fd00:0:0:0:2::5 123 123 0',
        '',
      ].join('\n'),
    );
    t.equal(same.status, 0, 'IPv6 written differently is still the same address');
    t.match(same.stdout, /^fairness: same 3 flows \(2 confirmed\)/);

    const differ = compare(
      [
        'icmpv6 2001:db8::1 fd00::5 128 0 1',
        'tcp 10.1.0.2 10.20.0.1 1024 443 0',
        'udp 2001:db8::1 fd00::2:0:0:5 123 123 0',
        '',
      ].join('\n'),
    );
    t.equal(differ.status, 1, 'a mismatch fails');
    t.match(differ.stdout, /^fairness: MISMATCH: .*1 only in ct-analyze, 1 only in awk\|sort/);
    t.match(differ.stdout, /only in ct-analyze: tcp 10\.1\.0\.2 10\.20\.0\.1 1024 443 1/);
    t.match(differ.stdout, /only in awk\|sort: {3}tcp 10\.1\.0\.2 10\.20\.0\.1 1024 443 0/);
  },
);

t.test(
  'bench/replay: an awk script that does not collapse source ports fails the bench',
  async (t) => {
    // A copy of bench/ beside the real dist/, with the collapse taken out of the awk script.
    const tmp = tempDir(t, 'bench-broken');
    const root = join(tmp, 'root');
    benchCopy(root, ['replay.sh', 'replay-gen.mjs', 'gen-common.mjs', 'replay-compare.mjs']);
    const awk = readFileSync(join(PACKAGE_ROOT, 'bench', 'replay.awk'), 'utf8');
    const broken = awk.replace('if (a > 1024) a = 1024', '');
    t.not(broken, awk, 'the collapse was there to take out');
    writeFileSync(join(root, 'bench', 'replay.awk'), broken);

    const run = bench(
      tmp,
      ['2000', '--flows', '200', '--runs', '1', '--no-build'],
      join(root, 'bench', 'replay.sh'),
    );
    t.equal(run.code, 1, 'exit 1');
    t.match(run.out, /^fairness: MISMATCH: ct-analyze \d+ flows, awk\|sort \d+/m);
    t.match(
      run.out,
      /^ {2}only in awk\|sort: {3}(tcp|udp) \S+ \S+ (?!1024 )\d+ /m,
      'real ports listed',
    );
    t.notMatch(run.out, /^targets/m, 'no figures after a failed check');
    t.match(run.err, /the fairness check failed for 2000 events/);
    t.match(run.err, /kept this run's outputs in /, 'the outputs stay for a look');
  },
);
