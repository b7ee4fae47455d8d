// ct-analyze rules: the services that get special treatment (sensitive ones pinned to exact sources, one-way UDP ones), and --sensitive's syntax.
import { InvalidArgumentError } from 'commander';
import { Proto } from '../../journal/event.js';

/** The ICMP type that asks for an echo, per family: the baseline admits it from anyone, rate-limited. */
export const ECHO_REQUEST: Readonly<Record<4 | 6, number>> = { 4: 8, 6: 128 };

/** A (protocol, port) pair as one number: proto << 16 | port. */
export type ServiceKey = number;
export const serviceKey = (proto: number, port: number): ServiceKey => proto * 0x10000 + port;

const tcp = (...ports: number[]) => ports.map((p) => serviceKey(Proto.TCP, p));
const udp = (...ports: number[]) => ports.map((p) => serviceKey(Proto.UDP, p));

/**
 * Services whose sources are pinned to the exact addresses seen, never a prefix: remote shells
 * and desktops, databases and caches, cluster control planes, directory, file sharing, SNMP,
 * IPMI. Opening one of these to a neighbour is what a reviewer refuses first.
 */
export const DEFAULT_SENSITIVE: ReadonlySet<ServiceKey> = new Set([
  // ssh, telnet, rdp, vnc, winrm
  ...tcp(22, 23, 3389, 5900, 5985, 5986),
  // mssql, oracle, mysql, postgresql, redis, cassandra, memcached, mongodb, elasticsearch
  ...tcp(1433, 1521, 3306, 5432, 6379, 9042, 11211, 27017, 9200, 9300),
  // docker, etcd, kube-apiserver, kubelet
  ...tcp(2375, 2376, 2379, 2380, 6443, 10250),
  // smb, rpcbind, nfs, ldap
  ...tcp(139, 445, 111, 2049, 389, 636),
  // snmp and its traps, ipmi, rpcbind, nfs
  ...udp(161, 162, 623, 111, 2049),
]);

/**
 * UDP services that never answer by design: a sender's datagrams stay unanswered, so they are
 * never confirmed, and rules must allow them on the admin's word (--allow-one-way).
 */
export const ONE_WAY: ReadonlyMap<ServiceKey, string> = new Map([
  [serviceKey(Proto.UDP, 514), 'syslog'],
  [serviceKey(Proto.UDP, 162), 'snmp-trap'],
  [serviceKey(Proto.UDP, 2055), 'netflow'],
  [serviceKey(Proto.UDP, 9995), 'netflow'],
  [serviceKey(Proto.UDP, 9996), 'netflow'],
  [serviceKey(Proto.UDP, 4739), 'ipfix'],
  [serviceKey(Proto.UDP, 6343), 'sflow'],
]);

/**
 * `--sensitive tcp/8443,udp/5000,9000`: ports added to the sensitive list; a bare port counts
 * for TCP and UDP. Repeatable: each value adds to the set it is given.
 */
export function parseServiceList(value: string, into: ServiceKey[] = []): ServiceKey[] {
  for (const item of value.split(',')) {
    const m = /^(?:(tcp|udp)\/)?(\d{1,5})$/.exec(item.trim().toLowerCase());
    const port = m === null ? Number.NaN : Number(m[2]);
    if (m === null || port < 1 || port > 65535) {
      throw new InvalidArgumentError(
        `"${item}" is not a port: give PORT, tcp/PORT or udp/PORT with PORT from 1 to 65535, comma-separated`,
      );
    }
    if (m[1] !== 'udp') into.push(serviceKey(Proto.TCP, port));
    if (m[1] !== 'tcp') into.push(serviceKey(Proto.UDP, port));
  }
  return into;
}
