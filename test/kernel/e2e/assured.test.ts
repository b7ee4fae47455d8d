// The real kernel's IPS_ASSURED in ct-record's journal: a completed TCP connection is established, a half-open SYN scan and a closed port are not.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { formatAddress } from '../../../analyzer/core/address.js';
import type { Flow } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { evidenceOf } from '../../../analyzer/rules/evidence.js';
import { RECORDER, startRecorder } from '../../../samples/record.js';
import { TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, exitedWithin, waitForLine } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-assured-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const OPEN = 8080;
/** Open too, but only SYN-scanned: its flow key (source port collapsed) differs from OPEN's. */
const SCANNED = 8082;
const CLOSED = 8081;

t.test(
  'kernel: a completed TCP connection is assured; a half-open SYN scan and a closed port are not',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const journal = join(dir, 'assured.mpk');
    const rec = await startRecorder(topo, journal);
    const node = process.execPath;
    const server = topo.spawn(topo.server.ns, [
      node,
      TRAFFIC_TOOL,
      'serve',
      '--tcp',
      `${OPEN},${SCANNED}`,
      '--for',
      '30',
    ]);
    await waitForLine(server.stdout as NonNullable<typeof server.stdout>, /^ready$/, 10_000);
    const tcp = (port: number) =>
      topo.exec(topo.client.ns, [node, TRAFFIC_TOOL, 'tcp', topo.server.v4, String(port)], {
        check: false,
      });
    const open = await tcp(OPEN);
    t.equal(open.code, 0, `the open port answers\n${open.stderr}`);
    const closed = await tcp(CLOSED);
    t.match(closed.stderr, /ECONNREFUSED/, 'the closed port resets the SYN');
    // SYN, SYN-ACK, then nmap's RST: the handshake never completes.
    const scan = await topo.exec(
      topo.client.ns,
      ['nmap', '-sS', '-Pn', '-n', '--max-retries', '0', '-p', String(SCANNED), topo.server.v4],
      { timeoutMs: 30_000 },
    );
    t.match(scan.stdout, new RegExp(`${SCANNED}/tcp +open`), 'nmap finds the port open');
    server.kill('SIGTERM');
    rec.child.kill('SIGTERM');
    t.equal(await exitedWithin(rec.child, 20_000), 0, `ct-record exits 0\n${rec.stderr()}`);

    const flows = [...analyzeJournals([journal]).table.flows()].filter(
      (f) => f.table === 'TCPv4' && formatAddress(f.dst) === topo.server.v4,
    );
    const to = (port: number) => flows.find((f) => f.dport === port);
    t.match(to(OPEN), { confirmed: true, assured: true }, `tcp/${OPEN}: replied and assured`);
    t.equal(evidenceOf(to(OPEN) as Flow), 'established', 'its evidence: established');
    t.match(
      to(SCANNED),
      { confirmed: true, assured: false },
      `tcp/${SCANNED}: SYN-ACK seen, never assured`,
    );
    t.equal(evidenceOf(to(SCANNED) as Flow), 'half-open', 'its evidence: half-open');
    // The kernel deletes an entry whose only reply is a RST before marking it replied
    // (nf_conntrack_proto_tcp.c): a closed port leaves an unanswered flow, not a half-open one.
    t.match(to(CLOSED), { confirmed: false, assured: false }, `tcp/${CLOSED}: no reply recorded`);
    t.equal(evidenceOf(to(CLOSED) as Flow), 'unanswered', 'its evidence: unanswered');
  },
);
