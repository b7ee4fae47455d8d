// Test helper: compiled rulesets and flows built by hand (Steps are plain closures), for the walk's tests.
import type {
  BaseChain,
  Chain,
  CtState,
  Hook,
  IndexField,
  Packet,
  Rule,
  Ruleset,
  Step,
  TableFamily,
  Tri,
  Verdict,
} from '../../../analyzer/check/model.js';
import { addressBytes } from '../../../analyzer/core/address.js';
import type { Direction } from '../../../analyzer/core/direction.js';
import type { FlowNat } from '../../../analyzer/core/nat.js';
import type { Flow } from '../../../analyzer/core/tables.js';

const hex = (a: Uint8Array) => Buffer.from(a).toString('hex');

export const match = (
  text: string,
  test: (p: Packet, marks: { meta: number | undefined; ct: number | undefined }) => Tri,
  index?: { field: IndexField; keys: string[] },
): Step => ({ kind: 'match', text, test, ...(index ? { index } : {}) });

export const daddr = (a: string) => {
  const b = hex(addressBytes(a));
  return match(`ip daddr ${a}`, (p) => hex(p.daddr) === b, { field: 'daddr', keys: [b] });
};
export const saddr = (a: string) => {
  const b = hex(addressBytes(a));
  return match(`ip saddr ${a}`, (p) => hex(p.saddr) === b, { field: 'saddr', keys: [b] });
};
/** `th dport N`: unknown where the packet's port is a range holding N. */
export const dport = (...ports: number[]) =>
  match(
    `th dport { ${ports.join(', ')} }`,
    (p) => {
      if (p.dport.from === p.dport.to) return ports.includes(p.dport.from);
      return ports.some((n) => n >= p.dport.from && n <= p.dport.to) ? 'unknown' : false;
    },
    { field: 'dport', keys: ports.map(String) },
  );
export const sport = (port: number) =>
  match(`th sport ${port}`, (p) => {
    if (p.sport.from === p.sport.to) return p.sport.from === port;
    return port >= p.sport.from && port <= p.sport.to ? 'unknown' : false;
  });
export const ctState = (...states: CtState[]) =>
  match(`ct state ${states.join(',')}`, (p) => states.includes(p.ct.state));
export const ctDirection = (d: 'original' | 'reply') =>
  match(`ct direction ${d}`, (p) => p.ct.direction === d);
export const ctMark = (n: number) =>
  match(`ct mark ${n}`, (_p, m) => (m.ct === undefined ? 'unknown' : m.ct === n));
export const metaMark = (n: number) =>
  match(`meta mark ${n}`, (_p, m) => (m.meta === undefined ? 'unknown' : m.meta === n));
export const iifname = (name: string) =>
  match(`iifname "${name}"`, (p) =>
    p.iifname === undefined ? 'unknown' : p.iifname !== null && p.iifname === name,
  );
export const oifname = (name: string) =>
  match(`oifname "${name}"`, (p) =>
    p.oifname === undefined ? 'unknown' : p.oifname !== null && p.oifname === name,
  );
export const unknown = (text: string) => match(text, () => 'unknown');

export const setCtMark = (n: number): Step => ({
  kind: 'effect',
  text: `ct mark set ${n}`,
  apply: (_p, m) => {
    m.ct = n;
  },
});
export const setMetaMark = (n: number): Step => ({
  kind: 'effect',
  text: `meta mark set ${n}`,
  apply: (_p, m) => {
    m.meta = n;
  },
});
export const counter: Step = { kind: 'effect', text: 'counter', apply: () => {} };

export const verdict = (v: Verdict): Step => ({
  kind: 'verdict',
  text: 'target' in v ? `${v.kind} ${v.target}` : v.kind,
  verdict: () => v,
});
export const accept = verdict({ kind: 'accept' });
export const drop = verdict({ kind: 'drop' });
export const reject = verdict({ kind: 'reject' });
export const ret = verdict({ kind: 'return' });
export const jump = (target: string) => verdict({ kind: 'jump', target });
export const goto = (target: string) => verdict({ kind: 'goto', target });
/** A verdict map on a key the recording does not hold. */
export const undecidedVmap = (key: string): Step => ({
  kind: 'verdict',
  text: `${key} vmap { … }`,
  verdict: () => ({ unknown: key }),
});

/** Rules of one chain: each a list of steps; text is the steps' texts. */
export function rules(...lists: Step[][]): Rule[] {
  return lists.map((steps, i) => ({
    index: i + 1,
    text: steps.map((s) => s.text).join(' '),
    steps,
    limited: false,
  }));
}

export function base(
  hook: Hook,
  priority: number,
  policy: 'accept' | 'drop' = 'accept',
  type: BaseChain['type'] = 'filter',
): BaseChain {
  return { type, hook, priority, policy };
}

export function chain(
  family: TableFamily,
  table: string,
  name: string,
  b: BaseChain | undefined,
  rs: Rule[],
): Chain {
  return { family, table, name, ...(b ? { base: b } : {}), rules: rs };
}

export function ruleset(chains: Chain[]): Ruleset {
  return {
    chains,
    chain: (family, table, name) =>
      chains.find((c) => c.family === family && c.table === table && c.name === name),
  };
}

export interface FlowSpec {
  src?: string;
  dst?: string;
  proto?: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  confirmed?: boolean;
  direction?: Direction[];
  nat?: { dst?: [string, number]; src?: [string, number] };
}

export function flow(s: FlowSpec = {}): Flow {
  const src = addressBytes(s.src ?? '198.51.100.7');
  const family = src.length === 4 ? 4 : 6;
  const proto = s.proto ?? 6;
  const icmp = proto === 1 || proto === 58;
  const nat: FlowNat = {};
  if (s.nat?.dst)
    nat.dst = { address: addressBytes(s.nat.dst[0]), port: s.nat.dst[1], more: false };
  if (s.nat?.src)
    nat.src = { address: addressBytes(s.nat.src[0]), port: s.nat.src[1], more: false };
  const table = `${proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : 'ICMP'}v${family}` as Flow['table'];
  return {
    table,
    family,
    proto,
    src,
    dst: addressBytes(s.dst ?? '203.0.113.1'),
    sport: icmp ? 0 : (s.sport ?? 40000),
    dport: icmp ? 0 : (s.dport ?? 80),
    icmpType: icmp ? (s.icmpType ?? 8) : 0,
    icmpCode: 0,
    confirmed: s.confirmed ?? true,
    assured: s.confirmed ?? true,
    firstSeen: 0,
    lastSeen: 0,
    hosts: [],
    ...(s.nat ? { nat } : {}),
    ...(s.direction ? { direction: s.direction } : {}),
  };
}
