// The traffic scenario behind the e2e test and the sample journals, with the flows it must yield.
import { fileURLToPath } from 'node:url';
import { type Topology, waitForLine } from '../test/helpers/netns.js';

export const TRAFFIC_TOOL = fileURLToPath(new URL('../test/helpers/traffic.mjs', import.meta.url));

export type TableName = 'TCPv4' | 'UDPv4' | 'ICMPv4' | 'TCPv6' | 'UDPv6' | 'ICMPv6';
const TABLES: readonly TableName[] = ['TCPv4', 'UDPv4', 'ICMPv4', 'TCPv6', 'UDPv6', 'ICMPv6'];

/** One flow the scenario made, keyed as conntrack's ORIGINAL tuple reports it. */
export interface ScenarioFlow {
  table: TableName;
  src: string;
  dst: string;
  /** The real source port the client used (TCP/UDP), uncollapsed; 0 for ICMP. */
  sport: number;
  dport: number;
  icmpType: number;
  icmpCode: number;
  /** True when the peer answered, so conntrack saw the reply direction. */
  confirmed: boolean;
  /** What the flow stands for, for messages. */
  label: string;
}

export type Collapse = '1024' | 'none';

/** The seed's line for `flow` without its ` [counter]` column (SEMANTICS.md "Line formats"). */
export function seedLine(flow: ScenarioFlow, collapse: Collapse = '1024'): string {
  const name = flow.table.padStart(6);
  const tail = flow.confirmed ? ' (confirmed)' : '';
  if (flow.table.startsWith('ICMP')) {
    return `${name} src = ${flow.src} to dst = ${flow.dst} (type=${flow.icmpType} | code=${flow.icmpCode})${tail}`;
  }
  const sport = collapse === '1024' && flow.sport > 1024 ? 1024 : flow.sport;
  return `${name} src = ${flow.src} (port=${sport}) to dst = ${flow.dst} (port=${flow.dport})${tail}`;
}

/** Expected lines in the analyzer's order; within a table this scenario has one src and dst. */
export function expectedLines(
  flows: readonly ScenarioFlow[],
  collapse: Collapse = '1024',
): string[] {
  const sorted = [...flows].map((f) => ({ f, line: seedLine(f, collapse) }));
  const port = (f: ScenarioFlow) => (collapse === '1024' && f.sport > 1024 ? 1024 : f.sport);
  sorted.sort(
    (a, b) =>
      TABLES.indexOf(a.f.table) - TABLES.indexOf(b.f.table) ||
      a.f.dport - b.f.dport ||
      port(a.f) - port(b.f) ||
      a.f.icmpType - b.f.icmpType,
  );
  // Collapsing can merge two flows into one line: the table shows it once.
  return [...new Set(sorted.map((s) => s.line))];
}

/** Removes the counter column of an analyzer text line: ` TCPv4 [   3] src…` → ` TCPv4 src…`. */
export function stripCounter(line: string): string {
  return line.replace(/^(.{6}) \[ *\d+\]/, '$1');
}

export const TCP_PORTS = [80, 443] as const;
const PRIVILEGED_SPORT = 999;
const NTP = 123;
const DNS = 53;
const SYSLOG = 514;

export interface ScenarioResult {
  flows: ScenarioFlow[];
}

/**
 * Runs the traffic between client and server of `topo`: web (TCP 80, 443), DNS-like UDP 53,
 * one-way UDP 514 (no listener: stays unconfirmed), TCP from privileged source port 999,
 * NTP-like UDP 123→123, ping; web, DNS and ping again over IPv6.
 */
export async function runScenario(topo: Topology): Promise<ScenarioResult> {
  const node = process.execPath;
  const server = topo.spawn(topo.server.ns, [
    node,
    TRAFFIC_TOOL,
    'serve',
    '--tcp',
    TCP_PORTS.join(','),
    '--udp',
    `${DNS},${NTP}`,
    '--for',
    '60',
  ]);
  try {
    await waitForLine(server.stdout as NonNullable<typeof server.stdout>, /^ready$/, 10_000);
    const flows: ScenarioFlow[] = [];
    const client = async (
      table: TableName,
      dst: string,
      dport: number,
      label: string,
      extra: string[] = [],
    ) => {
      const proto = table.startsWith('TCP') ? 'tcp' : 'udp';
      const res = await topo.exec(topo.client.ns, [
        node,
        TRAFFIC_TOOL,
        proto,
        dst,
        String(dport),
        ...extra,
      ]);
      const out = JSON.parse(res.stdout) as { local: { address: string; port: number } };
      const v6 = table.endsWith('v6');
      flows.push({
        table,
        src: v6 ? topo.client.v6 : topo.client.v4,
        dst,
        sport: out.local.port,
        dport,
        icmpType: 0,
        icmpCode: 0,
        confirmed: !extra.includes('--no-reply-expected'),
        label,
      });
    };
    const ping = async (table: 'ICMPv4' | 'ICMPv6', dst: string) => {
      const v6 = table === 'ICMPv6';
      await topo.exec(topo.client.ns, ['ping', ...(v6 ? ['-6'] : []), '-c', '1', '-W', '1', dst]);
      // The pinger's echo request is the original direction: type 8 (v4) / 128 (v6).
      flows.push({
        table,
        src: v6 ? topo.client.v6 : topo.client.v4,
        dst,
        sport: 0,
        dport: 0,
        icmpType: v6 ? 128 : 8,
        icmpCode: 0,
        confirmed: true,
        label: `ping ${dst}`,
      });
    };
    const { v4, v6 } = topo.server;
    for (const p of TCP_PORTS) await client('TCPv4', v4, p, `web ${p}`);
    await client('UDPv4', v4, DNS, 'dns');
    // No listener on 514: the server's port-unreachable is RELATED and confirms nothing.
    await client('UDPv4', v4, SYSLOG, 'one-way syslog', ['--no-reply-expected']);
    await client('TCPv4', v4, 80, 'privileged sport', ['--sport', String(PRIVILEGED_SPORT)]);
    await client('UDPv4', v4, NTP, 'ntp', ['--sport', String(NTP)]);
    await ping('ICMPv4', v4);
    for (const p of TCP_PORTS) await client('TCPv6', v6, p, `web ${p} v6`);
    await client('UDPv6', v6, DNS, 'dns v6');
    await ping('ICMPv6', v6);
    return { flows };
  } finally {
    server.kill('SIGTERM');
  }
}
