// ct-analyze rules: each flow's evidence from its status bits, and scan suspects found by a sliding window (examples and fast-check properties).
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { addressBytes } from '../../../analyzer/core/address.js';
import type { Flow } from '../../../analyzer/core/flows.js';
import {
  checkScanOptions,
  DEFAULT_SCAN,
  evidenceOf,
  findScanSuspects,
  type ScanOptions,
} from '../../../analyzer/rules/evidence.js';
import type { Evidence } from '../../../analyzer/rules/model.js';
import { CtError } from '../../../common/errors.js';
import { checkProperty } from '../../helpers/arbitraries.js';

const S = 1_000_000;
const T0 = Date.UTC(2026, 11, 1) * 1000;
const TCP = 6;
const UDP = 17;

interface Spec {
  src: string;
  dst: string;
  proto?: number;
  dport?: number;
  evidence?: Evidence;
  /** Seconds after T0; NaN: a flow without times. */
  at?: number;
  sport?: number;
  icmpType?: number;
}

/** A flow as the table would hold it, its status bits chosen for the evidence asked for. */
function flow(s: Spec): Flow {
  const src = addressBytes(s.src);
  const family = src.length === 4 ? 4 : 6;
  const proto = s.proto ?? TCP;
  const icmp = proto !== TCP && proto !== UDP;
  const evidence = s.evidence ?? 'unanswered';
  const time = T0 + (s.at ?? 0) * S;
  const kind = proto === TCP ? 'TCP' : proto === UDP ? 'UDP' : 'ICMP';
  return {
    table: `${kind}v${family}` as Flow['table'],
    family,
    proto,
    src,
    dst: addressBytes(s.dst),
    sport: icmp ? 0 : (s.sport ?? 1024),
    dport: icmp ? 0 : (s.dport ?? 80),
    icmpType: icmp ? (s.icmpType ?? 8) : 0,
    icmpCode: 0,
    // Only TCP has a half-open grade: for UDP and ICMP any reply is established.
    confirmed: proto === TCP ? evidence !== 'unanswered' : evidence === 'established',
    assured: evidence === 'established' && proto === TCP,
    firstSeen: time,
    lastSeen: time,
    hosts: [],
  };
}

const SCANNER = '203.0.113.66';
const VICTIM = '10.66.0.10';

t.test('evidence: TCP needs ASSURED, UDP and ICMP a reply', (t) => {
  const grade = (proto: number, confirmed: boolean, assured: boolean) =>
    evidenceOf({ ...flow({ src: SCANNER, dst: VICTIM, proto }), confirmed, assured });
  t.equal(grade(TCP, true, true), 'established', 'TCP: handshake completed');
  t.equal(grade(TCP, true, false), 'half-open', 'TCP: SYN-ACK or RST, never ASSURED');
  t.equal(grade(TCP, false, false), 'unanswered', 'TCP: no reply');
  t.equal(grade(TCP, false, true), 'established', 'TCP: ASSURED is enough on its own');
  for (const proto of [UDP, 1, 58]) {
    t.equal(grade(proto, true, false), 'established', `proto ${proto}: a reply`);
    t.equal(grade(proto, true, true), 'established', `proto ${proto}: a reply, ASSURED or not`);
    t.equal(grade(proto, false, false), 'unanswered', `proto ${proto}: no reply`);
  }
  t.end();
});

t.test('scan options: the defaults pass; a bad value is EUSAGE naming its flag', (t) => {
  t.same(checkScanOptions({ ...DEFAULT_SCAN }), { window: 300, ports: 10, hosts: 16 });
  t.same(checkScanOptions({ window: 0.5, ports: 2, hosts: 2 }), {
    window: 0.5,
    ports: 2,
    hosts: 2,
  });
  const bad: [Partial<ScanOptions>, RegExp][] = [
    [{ window: 0 }, /^--scan-window must be a number of seconds greater than 0, got 0: give/],
    [{ window: -5 }, /^--scan-window .* got -5/],
    [{ window: Number.NaN }, /^--scan-window .* got NaN/],
    [{ window: Number.POSITIVE_INFINITY }, /^--scan-window .* got Infinity/],
    [{ ports: 1 }, /^--scan-ports must be a whole number of at least 2, got 1: give e\.g\. 10$/],
    [{ ports: 2.5 }, /^--scan-ports .* got 2\.5/],
    [{ hosts: 0 }, /^--scan-hosts must be a whole number of at least 2, got 0: give e\.g\. 16$/],
  ];
  for (const [change, message] of bad) {
    const opts = { ...DEFAULT_SCAN, ...change };
    t.throws(() => checkScanOptions(opts), { code: 'EUSAGE', exit: 2, message }, message.source);
    t.throws(() => findScanSuspects([], opts), CtError, 'findScanSuspects checks them too');
  }
  t.end();
});

/** `n` ports from 1 on one destination, one a tenth of a second after the other. */
function portScan(n: number, evidence: (port: number) => Evidence, src = SCANNER): Flow[] {
  return Array.from({ length: n }, (_, i) =>
    flow({ src, dst: VICTIM, dport: i + 1, evidence: evidence(i + 1), at: i / 10 }),
  );
}

t.test('scan: an nmap-like SYN scan (1000 ports, 4 open and reset, the rest unanswered)', (t) => {
  const open = new Set([22, 80, 443, 631]);
  const flows = portScan(1000, (p) => (open.has(p) ? 'half-open' : 'unanswered'));
  t.same(findScanSuspects(flows, DEFAULT_SCAN), [
    {
      family: 4,
      address: addressBytes(SCANNER),
      ports: 1000,
      hosts: 1,
      flows: 1000,
      established: 0,
      firstSeen: T0,
      lastSeen: T0 + 99.9 * S,
    },
  ]);
  t.end();
});

t.test('scan: a connect scan (4 handshakes completed, 996 unanswered) is a suspect', (t) => {
  const open = new Set([22, 80, 443, 631]);
  const flows = portScan(1000, (p) => (open.has(p) ? 'established' : 'unanswered'));
  const [suspect, ...more] = findScanSuspects(flows, DEFAULT_SCAN);
  t.same(more, []);
  t.match(suspect, { family: 4, ports: 1000, hosts: 1, flows: 1000, established: 4 });
  t.end();
});

t.test('scan: Prometheus scraping 30 exporters on 9100, every scrape answered, is not', (t) => {
  const flows: Flow[] = [];
  for (let scrape = 0; scrape < 20; scrape++) {
    for (let h = 1; h <= 30; h++) {
      const dst = `10.66.1.${h}`;
      flows.push(
        flow({
          src: '10.66.0.5',
          dst,
          dport: 9100,
          evidence: 'established',
          at: scrape * 15,
          sport: 1024 + scrape,
        }),
      );
    }
  }
  t.same(findScanSuspects(flows, DEFAULT_SCAN), []);
  // The same sweep with 15 of the 30 exporters down (SYN unanswered) is half failed: a suspect.
  const down = flows.map((f) =>
    (f.dst[3] as number) > 15 ? { ...f, confirmed: false, assured: false } : f,
  );
  t.match(findScanSuspects(down, DEFAULT_SCAN), [{ hosts: 30, ports: 1, established: 300 }]);
  t.end();
});

t.test('scan: the thresholds are reached, or not, at exactly ports and hosts', (t) => {
  const opts = DEFAULT_SCAN;
  t.equal(
    findScanSuspects(
      portScan(9, () => 'unanswered'),
      opts,
    ).length,
    0,
    '9 ports',
  );
  t.equal(
    findScanSuspects(
      portScan(10, () => 'unanswered'),
      opts,
    ).length,
    1,
    '10 ports',
  );
  const sweep = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      flow({ src: SCANNER, dst: `10.66.2.${i + 1}`, proto: UDP, dport: 161, at: i }),
    );
  t.equal(findScanSuspects(sweep(15), opts).length, 0, '15 hosts on udp/161');
  t.match(findScanSuspects(sweep(16), opts), [{ hosts: 16, ports: 1 }], '16 hosts');
  // TCP and UDP ports both count on one destination: 5 + 5 is 10.
  const mixed = [
    ...portScan(5, () => 'unanswered'),
    ...portScan(5, () => 'unanswered').map((f) => ({ ...f, proto: UDP, table: 'UDPv4' as const })),
  ];
  t.match(findScanSuspects(mixed, opts), [{ ports: 10 }], 'tcp/1-5 and udp/1-5');
  // Many flows to one target (other source ports) are one target.
  const again = Array.from({ length: 50 }, (_, i) =>
    flow({ src: SCANNER, dst: VICTIM, dport: 80, sport: 2000 + i, at: i }),
  );
  t.same(findScanSuspects(again, opts), [], 'one port retried 50 times');
  t.end();
});

t.test('scan: the window slides; a scan slower than it is not caught', (t) => {
  // Ten ports, one every 40 s: any 300 s hold at most eight.
  const slow = portScan(10, () => 'unanswered').map((f, i) => ({
    ...f,
    firstSeen: T0 + i * 40 * S,
  }));
  t.same(findScanSuspects(slow, DEFAULT_SCAN), [], 'ten ports over 360 s');
  t.equal(findScanSuspects(slow, { ...DEFAULT_SCAN, window: 360 }).length, 1, 'a 360 s window');
  t.equal(findScanSuspects(slow, { ...DEFAULT_SCAN, ports: 8 }).length, 1, 'eight ports in 280 s');
  t.end();
});

t.test(
  'scan: answered traffic later in a window does not hide a scan (the window that ends with it)',
  (t) => {
    // 20 ports scanned in 2 s, then 100 answered connections to other hosts 200 s later: a window
    // starting at the scan holds 100 of 120 targets established, the one ending with it none.
    const scan = portScan(20, () => 'unanswered');
    const work = Array.from({ length: 100 }, (_, i) =>
      flow({ src: SCANNER, dst: `10.77.0.${i + 1}`, dport: 443, evidence: 'established', at: 200 }),
    );
    t.match(findScanSuspects([...scan, ...work], DEFAULT_SCAN), [
      { ports: 20, hosts: 100, flows: 120, established: 100 },
    ]);
    // Half of it as the scan starts and half as it ends does hide it: every window that holds a
    // scanned port holds 50 answered targets, more than the ports it can hold.
    const during = work.map((f, i) => ({ ...f, firstSeen: T0 + (i % 2 === 0 ? 0 : 1.9 * S) }));
    t.same(findScanSuspects([...scan, ...during], DEFAULT_SCAN), []);
    t.end();
  },
);

t.test('scan: flows without times form one window; ICMP flows are no targets', (t) => {
  const untimed = portScan(10, () => 'unanswered').map((f) => ({
    ...f,
    firstSeen: Number.NaN,
    lastSeen: Number.NaN,
  }));
  const [suspect] = findScanSuspects(untimed, DEFAULT_SCAN);
  t.match(suspect, { ports: 10, flows: 10 });
  t.notOk(suspect !== undefined && ('firstSeen' in suspect || 'lastSeen' in suspect), 'no times');
  const ping = Array.from({ length: 254 }, (_, i) =>
    flow({ src: SCANNER, dst: `10.66.3.${i + 1}`, proto: 1, at: i / 100 }),
  );
  t.same(findScanSuspects(ping, DEFAULT_SCAN), [], 'a ping sweep of a /24');
  // A suspect's ICMP flows are counted with its flows all the same.
  t.match(findScanSuspects([...portScan(10, () => 'unanswered'), ...ping], DEFAULT_SCAN), [
    { flows: 264 },
  ]);
  t.end();
});

t.test('scan: suspects sorted by family, then address as a number; sources apart', (t) => {
  const sources = ['2001:db8::9', '10.0.0.20', '2001:db8::10', '10.0.0.3', '192.0.2.1'];
  const flows = sources.flatMap((src) => portScan(10, () => 'unanswered', src));
  // A sixth source, below the thresholds, and one whose scan was answered.
  flows.push(...portScan(9, () => 'unanswered', '10.0.0.4'));
  flows.push(...portScan(12, () => 'established', '10.0.0.5'));
  const found = findScanSuspects(flows, DEFAULT_SCAN);
  t.same(
    found.map((s) => [s.family, [...s.address].join('.')]),
    [
      [4, '10.0.0.3'],
      [4, '10.0.0.20'],
      [4, '192.0.2.1'],
      [6, [...addressBytes('2001:db8::9')].join('.')],
      [6, [...addressBytes('2001:db8::10')].join('.')],
    ],
  );
  t.end();
});

// --- properties ------------------------------------------------------------------------------

const arbOpts: fc.Arbitrary<ScanOptions> = fc.record({
  window: fc.constantFrom(1, 60, 300),
  ports: fc.integer({ min: 2, max: 6 }),
  hosts: fc.integer({ min: 2, max: 6 }),
});
const arbEvidence = fc.constantFrom<Evidence>('established', 'half-open', 'unanswered');
const SOURCES = ['10.0.0.1', '10.0.0.2', '2001:db8::1'];
const DSTS4 = Array.from({ length: 8 }, (_, i) => `10.66.0.${i + 1}`);
const DSTS6 = Array.from({ length: 8 }, (_, i) => `2001:db8:66::${i + 1}`);
const dstsOf = (src: string) => (src.includes(':') ? DSTS6 : DSTS4);

/** Flows from `sources`, destinations and services from small pools so that windows fill up. */
function arbFlows(opts: {
  sources?: readonly string[];
  dsts?: number;
  services?: readonly [number, number][];
  evidence?: fc.Arbitrary<Evidence>;
  maxLength?: number;
}): fc.Arbitrary<Flow[]> {
  const services = opts.services ?? [
    ...[22, 80, 443, 3306, 8080, 9100, 10250].map((p): [number, number] => [TCP, p]),
    ...[53, 123, 161].map((p): [number, number] => [UDP, p]),
  ];
  return fc.array(
    fc
      .record({
        src: fc.constantFrom(...(opts.sources ?? SOURCES)),
        dst: fc.nat((opts.dsts ?? 8) - 1),
        service: fc.constantFrom(...services),
        evidence: opts.evidence ?? arbEvidence,
        // A burst of a few seconds or seconds over ten minutes; now and then no times at all.
        at: fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 5 }), weight: 6 },
          { arbitrary: fc.integer({ min: 0, max: 600 }), weight: 4 },
          { arbitrary: fc.constant(Number.NaN), weight: 1 },
        ),
        sport: fc.constantFrom(1024, 2000),
      })
      .map(({ src, dst, service: [proto, dport], ...rest }) =>
        flow({ src, dst: dstsOf(src)[dst] as string, proto, dport, ...rest }),
      ),
    { maxLength: opts.maxLength ?? 80, size: 'medium' },
  );
}

const suspects = (flows: readonly Flow[], opts: ScanOptions) =>
  findScanSuspects(flows, opts).map((s) => [...s.address].join('.'));

t.test('scan property: a source below the thresholds is never a suspect', (t) => {
  // Fewer destinations than --scan-hosts and fewer services than --scan-ports: no window can
  // reach either, whatever the evidence.
  const arbBelow = arbOpts.chain((opts) =>
    fc
      .uniqueArray(fc.tuple(fc.constantFrom(TCP, UDP), fc.integer({ min: 1, max: 65535 })), {
        minLength: 1,
        maxLength: opts.ports - 1,
        selector: ([proto, port]) => proto * 65536 + port,
      })
      .chain((services) =>
        fc.tuple(fc.constant(opts), arbFlows({ dsts: opts.hosts - 1, services, maxLength: 200 })),
      ),
  );
  checkProperty(
    t,
    fc.property(arbBelow, ([opts, flows]) => suspects(flows, opts).length === 0),
    { numRuns: 200 },
  );
  t.end();
});

t.test('scan property: adding unanswered or half-open flows to a suspect keeps it one', (t) => {
  checkProperty(
    t,
    fc.property(
      arbOpts,
      arbFlows({
        sources: [SCANNER],
        evidence: fc.constantFrom<Evidence>('established', 'unanswered', 'unanswered', 'half-open'),
      }),
      arbFlows({
        sources: [SCANNER],
        evidence: fc.constantFrom<Evidence>('unanswered', 'half-open'),
      }),
      (opts, flows, more) => {
        fc.pre(suspects(flows, opts).length === 1);
        return suspects([...flows, ...more], opts).length === 1;
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

t.test(
  'scan property: a sweep where every target answered (monitoring) is never a suspect',
  (t) => {
    checkProperty(
      t,
      fc.property(
        arbOpts,
        arbFlows({ evidence: fc.constant('established'), maxLength: 200 }),
        (opts, flows) => suspects(flows, opts).length === 0,
      ),
      { numRuns: 200 },
    );
    t.end();
  },
);

t.test('scan property: the order of the flows does not matter', (t) => {
  checkProperty(
    t,
    fc.property(
      arbOpts,
      arbFlows({}).chain((flows) =>
        fc.tuple(fc.constant(flows), fc.shuffledSubarray(flows, { minLength: flows.length })),
      ),
      (opts, [flows, shuffled]) => {
        assert.deepStrictEqual(findScanSuspects(shuffled, opts), findScanSuspects(flows, opts));
      },
    ),
    { numRuns: 300 },
  );
  t.end();
});

t.test(
  'scan property: the cases make suspects and non-suspects (the generators reach both)',
  (t) => {
    let yes = 0;
    let no = 0;
    for (const [opts, flows] of fc.sample(fc.tuple(arbOpts, arbFlows({})), {
      numRuns: 300,
      seed: 17,
    })) {
      const n = suspects(flows, opts).length;
      yes += n;
      no += new Set(flows.map((f) => [...f.src].join('.'))).size - n;
    }
    t.ok(yes > 50, `suspects: ${yes}`);
    t.ok(no > 50, `sources not suspected: ${no}`);
    t.end();
  },
);
