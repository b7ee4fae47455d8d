// bench/sustained.sh smoke test: a short flood per arm prints each arm's row and medians, counts ct-record's losses at least as the kernel did, and leaves no namespace, sysctl or cgroup behind.
import '../../helpers/kernel.js';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../../common/package.js';

const SCRIPT = join(PACKAGE_ROOT, 'bench', 'sustained.sh');
const BUILT = join(PACKAGE_ROOT, 'dist', 'recorder', 'cli.js');

function sysctl(name: string): string {
  return readFileSync(`/proc/sys/net/netfilter/${name}`, 'utf8').trim();
}

/** Network namespaces bench/sustained.sh names cts-PID-c and cts-PID-s. */
function benchNamespaces(): string[] {
  return existsSync('/run/netns')
    ? readdirSync('/run/netns').filter((n) => n.startsWith('cts-'))
    : [];
}

/** Cgroups the bounded arm makes (ctbench-PID), in v2 or v1's cpu hierarchy. */
function benchCgroups(): string[] {
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/cpu']
    .filter((d) => existsSync(d))
    .flatMap((d) => readdirSync(d).filter((n) => n.startsWith('ctbench-')));
}

t.test(
  'bench/sustained.sh: 3 s per arm, idle, ct-record and bounded, sane and cleaned up',
  async (t) => {
    t.ok(existsSync(BUILT), `${BUILT} exists (npm run build)`);
    const max = sysctl('nf_conntrack_max');
    const buckets = sysctl('nf_conntrack_buckets');
    const namespacesBefore = benchNamespaces();
    const started = Date.now();
    const run = spawnSync(
      SCRIPT,
      [
        '--seconds',
        '3',
        '--table',
        '400000',
        '--udp-timeout',
        '2',
        '--arms',
        'idle,ct-record,bounded',
        '--no-build',
      ],
      { encoding: 'utf8', timeout: 300_000 },
    );
    const seconds = (Date.now() - started) / 1000;
    t.equal(run.status, 0, `exit 0: ${run.stderr.slice(-800)}`);
    const out = run.stdout;
    t.comment(out);

    const rows = new Map<string, string[]>();
    for (const line of out.split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols[0] === '1' && cols.length === 19) rows.set(cols[1] as string, cols);
    }
    t.same(
      [...rows.keys()].sort(),
      ['bounded', 'ct-record', 'idle', 'without'],
      'a row for each arm and the flood alone',
    );
    for (const [arm, cols] of rows) {
      const rate = Number(cols[2]);
      const created = Number(cols[4]);
      t.ok(rate > 1000, `${arm}: the flood ran (${rate} flows/s)`);
      t.ok(created > 0, `${arm}: the kernel created entries (${created})`);
    }
    for (const arm of ['ct-record', 'bounded']) {
      const cols = rows.get(arm) ?? [];
      const [caught, lost, drops] = [cols[8], cols[9], cols[10]].map(Number);
      const created = Number(cols[4]);
      t.ok(
        (caught ?? 0) > 0 && (caught ?? 0) <= created,
        `${arm}: NEW events caught (${caught} of ${created})`,
      );
      // The journal counts what the kernel dropped at its socket, and what its own queue dropped.
      t.ok(
        (lost ?? -1) >= (drops ?? 0),
        `${arm}: the journal's lost (${lost}) covers the socket's drops (${drops})`,
      );
      t.ok(Number(cols[14]) > 0, `${arm}: a journal was written`);
      t.ok(Number(cols[18]) > 0, `${arm}: a peak RSS`);
    }
    t.match(out, /^ {2}bounded: the flood at [\d.]+ flows\/s, [\d.]+× its own run's flood alone/m);
    t.match(out, /\(bounded: nice 19, 50 % CPU quota\)/);

    t.equal(sysctl('nf_conntrack_max'), max, 'nf_conntrack_max restored');
    t.equal(sysctl('nf_conntrack_buckets'), buckets, 'nf_conntrack_buckets restored');
    t.same(benchNamespaces(), namespacesBefore, 'no namespace left behind');
    t.same(benchCgroups(), [], 'no cgroup left behind');
    // About 60 s measured here (4 floods of 3 s, namespaces, journal reading): the bound only
    // catches a hang.
    t.ok(seconds < 250, `ran in ${seconds.toFixed(0)} s`);
  },
);
