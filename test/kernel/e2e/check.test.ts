// The real kernel as the oracle: random rulesets, loaded in a namespace, judge real flows as check's evaluator does.
import '../../helpers/kernel.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { compileRuleset } from '../../../analyzer/check/compile.js';
import { evaluateFlow } from '../../../analyzer/check/connection.js';
import { loadRuleset } from '../../../analyzer/check/load.js';
import type { Rule } from '../../../analyzer/check/model.js';
import { type Collapse, type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import { TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ev } from '../../analyzer/fixtures.js';
import { createTopology, waitForLine } from '../../helpers/netns.js';

const NET = 73;
const v4 = (host: number) => `10.211.${NET}.${host}`;
/** Client addresses (the first is the topology's own) and server addresses. */
const CLIENTS = [1, 3, 5, 9].map(v4);
const SERVERS = [2, 22].map(v4);
const TCP_PORTS = [22, 80, 443, 8080];
const UDP_PORTS = [53, 123];
/** How long a dropped packet is waited for: a drop shows as silence. */
const WAIT_MS = 300;
const NONE: Collapse = { kind: 'none' };

/** Disjoint elements, so every anonymous set nft is given is valid. */
const ADDRESS_ELEMENTS = [
  ...CLIENTS,
  ...SERVERS,
  `10.211.${NET}.16/30`,
  `10.211.${NET}.24/29`,
  '192.0.2.0/24',
];
const ADDRESS_VALUES = [...ADDRESS_ELEMENTS, `10.211.${NET}.0/24`, `10.211.${NET}.0/29`];
const PORT_ELEMENTS = [
  '22',
  '53',
  '80',
  '123',
  '443',
  '8080',
  '1-21',
  '54-79',
  '124-442',
  '8081-9000',
];
const PORT_VALUES = [...PORT_ELEMENTS, '20-100', '100-500', '8000-8100'];

/** A value or an anonymous set of disjoint elements. */
function arbValue(values: string[], elements: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...values),
    fc
      .uniqueArray(fc.constantFrom(...elements), { minLength: 2, maxLength: 3 })
      .map((xs) => `{ ${xs.join(', ')} }`),
  );
}

const arbAddressMatch = fc.option(
  fc
    .tuple(fc.boolean(), arbValue(ADDRESS_VALUES, ADDRESS_ELEMENTS))
    .map(([negate, v]) => `${negate ? '!= ' : ''}${v}`),
  { freq: 2 },
);

/** nft refuses `meta l4proto udp tcp dport 22` (conflicting protocols): one or the other. */
const arbProtoMatch = fc.oneof(
  fc.constant(''),
  fc.constantFrom('meta l4proto tcp', 'meta l4proto udp', 'meta l4proto { tcp, udp }'),
  fc
    .tuple(fc.constantFrom('tcp', 'udp'), arbValue(PORT_VALUES, PORT_ELEMENTS))
    .map(([proto, ports]) => `${proto} dport ${ports}`),
);

/** A first packet is ct state new: these conditions match it, or never do. */
const arbStateMatch = fc.option(
  fc.constantFrom('ct state new', 'ct state { new, established }', 'ct state established'),
  { freq: 4 },
);

function arbRuleWith(verdicts: string[]): fc.Arbitrary<string> {
  return fc
    .record({
      state: arbStateMatch,
      saddr: arbAddressMatch,
      daddr: arbAddressMatch,
      proto: arbProtoMatch,
      verdict: fc.constantFrom(...verdicts),
    })
    .map((r) =>
      [
        r.state ?? '',
        r.saddr === null ? '' : `ip saddr ${r.saddr}`,
        r.daddr === null ? '' : `ip daddr ${r.daddr}`,
        r.proto,
        r.verdict,
      ]
        .filter((x) => x !== '')
        .join(' '),
    );
}

const arbRule = arbRuleWith(['accept', 'drop', 'reject', 'counter accept']);
/** In the input chain, a rule may also jump to the regular chain `sub`… */
const arbInputRule = fc.oneof(
  { weight: 4, arbitrary: arbRule },
  { weight: 1, arbitrary: arbRuleWith(['jump sub', 'goto sub']) },
);
/** …which may return early. */
const arbSubRule = fc.oneof(
  { weight: 3, arbitrary: arbRule },
  { weight: 1, arbitrary: arbRuleWith(['return']) },
);

const TABLE = `ct_check_${process.pid}`;

const arbRuleset = fc
  .record({
    policy: fc.constantFrom('accept', 'drop'),
    rules: fc.array(arbInputRule, { minLength: 1, maxLength: 4 }),
    sub: fc.array(arbSubRule, { minLength: 0, maxLength: 3 }),
  })
  .map(
    ({ policy, rules, sub }) => `table inet ${TABLE}
delete table inet ${TABLE}
table inet ${TABLE} {
  chain input {
    type filter hook input priority filter; policy ${policy};
    ct state established,related accept
${rules.map((r) => `    ${r}\n`).join('')}  }
  chain sub {
${sub.map((r) => `    ${r}\n`).join('')}  }
}
`,
  );

interface Probe {
  proto: 'tcp' | 'udp';
  src: string;
  dst: string;
  port: number;
}

const arbProbe: fc.Arbitrary<Probe> = fc
  .record({
    proto: fc.constantFrom('tcp' as const, 'udp' as const),
    src: fc.constantFrom(...CLIENTS),
    dst: fc.constantFrom(...SERVERS),
    i: fc.nat(),
  })
  .map(({ proto, src, dst, i }) => {
    const ports = proto === 'tcp' ? TCP_PORTS : UDP_PORTS;
    return { proto, src, dst, port: ports[i % ports.length] as number };
  });

/**
 * Sends every probe at once from the client namespace; prints a JSON array of `accepted`
 * (connected / answered), `refused` (ECONNREFUSED: a reject) or `silent` (nothing in time).
 */
const PROBE_SCRIPT = `
const net = require('node:net');
const dgram = require('node:dgram');
const probes = JSON.parse(process.argv[1]);
const wait = ${WAIT_MS};
const one = (p) => new Promise((resolve) => {
  if (p.proto === 'tcp') {
    const s = net.connect({ host: p.dst, port: p.port, localAddress: p.src });
    const timer = setTimeout(() => { s.destroy(); resolve('silent'); }, wait);
    s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('accepted'); });
    s.on('error', (e) => { clearTimeout(timer); resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code); });
  } else {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => { s.close(); resolve('silent'); }, wait);
    s.on('message', () => { clearTimeout(timer); s.close(); resolve('accepted'); });
    s.on('error', (e) => { clearTimeout(timer); s.close(); resolve(e.code); });
    s.bind(0, p.src, () => s.send('ping', p.port, p.dst));
  }
});
Promise.all(probes.map(one)).then((r) => process.stdout.write(JSON.stringify(r)));
`;

const dir = mkdtempSync(join(tmpdir(), `ct-check-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * What the kernel would show for check's fate: UDP gets no answer to a reject it can see; a
 * connection that breaks on the reply is silence, one that breaks later still connected (TCP)
 * or was answered once (UDP), all a probe waits for.
 */
async function expected(ruleset: string, probes: readonly Probe[]): Promise<string[]> {
  const table = new FlowTable({ collapse: NONE });
  const host = table.hostId('server');
  table.addHostAddresses(
    host,
    SERVERS.map((a) => ({ address: Uint8Array.from(a.split('.').map(Number)) })),
  );
  const keyOf = (p: Probe) => `${p.proto} ${p.src} ${p.dst} ${p.port}`;
  for (const p of probes) {
    table.add(ev(p.proto === 'tcp' ? 6 : 17, p.src, p.dst, 40000, p.port, 0x0e), host);
  }
  const flows = [...table.flows()];
  const key = (f: Flow) =>
    `${f.proto === 6 ? 'tcp' : 'udp'} ${[...f.src].join('.')} ${[...f.dst].join('.')} ${f.dport}`;
  // check's own path: the loader (nft in a throwaway namespace), the compiler, the walk.
  const file = join(dir, 'ruleset.nft');
  writeFileSync(file, ruleset);
  const { ruleset: compiled } = compileRuleset((await loadRuleset(file)).json);
  const hit = new Set<Rule>();
  const fate = new Map<string, string>();
  for (const f of flows) {
    const r = evaluateFlow(compiled, f, { collapse: NONE }, hit);
    if (r.kind === 'undetermined') {
      throw new Error(`no match here is undecidable, yet ${key(f)}: ${r.match} (${r.rule.text})`);
    }
    const refused = r.kind === 'blocked' && r.by.verdict === 'reject' && f.proto === 6;
    const silent = r.kind === 'blocked' || (r.kind === 'breaks' && r.packet === 'reply');
    fate.set(key(f), refused ? 'refused' : silent ? 'silent' : 'accepted');
  }
  return probes.map((p) => fate.get(keyOf(p)) ?? 'missing');
}

t.test(
  "check agrees with the kernel: random nft rulesets judge real TCP/UDP flows as check's loader, compiler and walk do",
  async (t) => {
    const topo = await createTopology(t, 'lan', { net: NET });
    const { client, server } = topo;
    for (const a of CLIENTS.slice(1)) {
      await topo.exec(client.ns, ['ip', 'addr', 'add', `${a}/24`, 'dev', 'to-server']);
    }
    for (const a of SERVERS.slice(1)) {
      await topo.exec(server.ns, ['ip', 'addr', 'add', `${a}/24`, 'dev', 'to-client']);
    }
    const serve = topo.spawn(server.ns, [
      process.execPath,
      TRAFFIC_TOOL,
      'serve',
      '--tcp',
      TCP_PORTS.join(','),
      '--udp',
      UDP_PORTS.join(','),
      '--for',
      '240',
    ]);
    await waitForLine(serve.stdout as NonNullable<typeof serve.stdout>, /^ready$/, 10_000);

    const probe = async (probes: Probe[]): Promise<string[]> => {
      const res = await topo.exec(
        client.ns,
        [process.execPath, '-e', PROBE_SCRIPT, JSON.stringify(probes)],
        { timeoutMs: 10_000 },
      );
      return JSON.parse(res.stdout) as string[];
    };

    // Without a ruleset every probe gets through: a later refusal is the ruleset's.
    const all = CLIENTS.flatMap((src) =>
      SERVERS.flatMap((dst) => [
        ...TCP_PORTS.map((port) => ({ proto: 'tcp' as const, src, dst, port })),
        ...UDP_PORTS.map((port) => ({ proto: 'udp' as const, src, dst, port })),
      ]),
    );
    t.same(
      await probe(all),
      all.map(() => 'accepted'),
      'every probe is answered before any ruleset is loaded',
    );

    // Fixed cases first, so every kernel answer (accepted, refused, silent) is always compared.
    const ruleset = (policy: string, rules: string[]) =>
      `table inet ${TABLE}\ndelete table inet ${TABLE}\ntable inet ${TABLE} {\n  chain input {\n    type filter hook input priority filter; policy ${policy};\n${rules.map((r) => `    ${r}\n`).join('')}  }\n}\n`;
    const examples: [string, Probe[]][] = [
      [
        ruleset('drop', [
          `ip saddr != ${v4(9)} tcp dport 22 reject`,
          'tcp dport { 22, 80 } accept',
          `ip daddr ${v4(22)} udp dport 53 accept`,
        ]),
        [
          { proto: 'tcp', src: v4(1), dst: v4(2), port: 22 },
          { proto: 'tcp', src: v4(9), dst: v4(2), port: 22 },
          { proto: 'tcp', src: v4(3), dst: v4(22), port: 443 },
          { proto: 'udp', src: v4(5), dst: v4(22), port: 53 },
        ],
      ],
    ];
    const seen = new Map<string, number>();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        arbRuleset,
        fc.array(arbProbe, { minLength: 4, maxLength: 4 }),
        async (ruleset, probes) => {
          runs++;
          const load = await topo.exec(server.ns, ['nft', '-f', '-'], {
            input: ruleset,
            check: false,
          });
          if (load.code !== 0)
            throw new Error(`nft -f refused the generated ruleset: ${load.stderr}\n${ruleset}`);
          const kernel = await probe(probes);
          for (const k of kernel) seen.set(k, (seen.get(k) ?? 0) + 1);
          const check = await expected(ruleset, probes);
          if (JSON.stringify(kernel) !== JSON.stringify(check)) {
            throw new Error(
              `kernel ${JSON.stringify(kernel)} vs check ${JSON.stringify(check)} for ${JSON.stringify(probes)}\n${ruleset}`,
            );
          }
        },
      ),
      { numRuns: 30 + examples.length, endOnFailure: true, examples },
    );
    t.equal(runs, 30 + examples.length, 'every ruleset × 4 flows agreed');
    t.same(
      [...seen.keys()].sort(),
      ['accepted', 'refused', 'silent'],
      `the kernel gave every kind of answer: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
  },
);
