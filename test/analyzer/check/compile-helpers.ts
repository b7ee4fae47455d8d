// Test helper: packets built by hand and single rules compiled from nft JSON snippets, to decide each construct in isolation.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CompiledRuleset, compileRuleset } from '../../../analyzer/check/compile.js';
import type { Marks, Packet, Rule, Verdict } from '../../../analyzer/check/model.js';
import { parseNftJson } from '../../../analyzer/check/nft-json.js';
import { addressBytes } from '../../../analyzer/core/address.js';
import { PACKAGE_ROOT } from '../../../common/package.js';

export const LOADED = join(PACKAGE_ROOT, 'test', 'fixtures', 'rulesets', 'loaded');

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export interface PacketSpec extends Partial<Omit<Packet, 'saddr' | 'daddr' | 'ct'>> {
  saddr?: string;
  daddr?: string;
  ct?: Partial<Packet['ct']>;
}

/** A TCP SYN from 10.0.0.1:40000 to the host's 10.0.0.2:22 on eth0, at input, unless told otherwise. */
export function pkt(spec: PacketSpec = {}): Packet {
  const { saddr, daddr, ct, ...rest } = spec;
  const s = addressBytes(saddr ?? (spec.family === 6 ? '2001:db8::1' : '10.0.0.1'));
  const d = addressBytes(daddr ?? (spec.family === 6 ? '2001:db8::2' : '10.0.0.2'));
  const p: Mutable<Packet> = {
    hook: 'input',
    family: s.length === 4 ? 4 : 6,
    proto: 6,
    saddr: s,
    daddr: d,
    sport: { from: 40000, to: 40000 },
    dport: { from: 22, to: 22 },
    tcpFlags: 0x02,
    ct: { state: 'new', direction: 'original', status: 0, statusKnown: 0xffffffff, ...ct },
    iifname: 'eth0',
    oifname: null,
    saddrType: 'unicast',
    daddrType: 'local',
    ...rest,
  };
  return p;
}

export const port = (n: number) => ({ from: n, to: n });
export const marks = (meta?: number, ct?: number): Marks => ({ meta, ct });

/** A listing of one `inet t c` chain with these rules' statements, plus extra objects (sets, maps). */
export function listing(rules: readonly unknown[][], extra: readonly object[] = []) {
  return {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { table: { family: 'inet', name: 't', handle: 1 } },
      ...extra.map((o) => {
        const [k, v] = Object.entries(o)[0] as [string, object];
        return { [k]: { family: 'inet', table: 't', ...v } };
      }),
      { chain: { family: 'inet', table: 't', name: 'c', handle: 2 } },
      ...rules.map((expr, i) => ({
        rule: { family: 'inet', table: 't', chain: 'c', handle: 10 + i, expr },
      })),
    ],
  };
}

/** The one rule of `inet t c` compiled from `expr`. */
export function rule(expr: unknown[], extra: readonly object[] = []): Rule {
  const compiled = compileRuleset(listing([expr], extra));
  return compiled.ruleset.chain('inet', 't', 'c')?.rules[0] as Rule;
}

export function loaded(file: string): CompiledRuleset {
  return compileRuleset(parseNftJson(readFileSync(join(LOADED, file), 'utf8'), file));
}

/**
 * What a rule does with a packet: its verdict, `no` when a match fails, `go on` when it ends
 * without a verdict, or `unknown: <text>` at the first step that cannot be decided.
 */
export function run(r: Rule, p: Packet, m: Marks = marks()): string {
  for (const s of r.steps) {
    if (s.kind === 'match') {
      const t = s.test(p, m);
      if (t === 'unknown') return `unknown: ${s.text}`;
      if (!t) return 'no';
    } else if (s.kind === 'effect') {
      s.apply(p, m);
    } else {
      const v = s.verdict(p, m);
      if (v === undefined) continue;
      if ('unknown' in v) return `unknown: ${v.unknown}`;
      return verdictText(v);
    }
  }
  return 'go on';
}

function verdictText(v: Verdict): string {
  return 'target' in v ? `${v.kind} ${v.target}` : v.kind;
}

/** A match `left op right` as a rule's only statement, then accept. */
export function decide(
  left: unknown,
  right: unknown,
  p: Packet,
  op = '==',
  extra: readonly object[] = [],
): string {
  return run(rule([{ match: { op, left, right } }, { accept: null }], extra), p);
}

export const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
export const meta = (key: string) => ({ meta: { key } });
export const ct = (key: string, more: object = {}) => ({ ct: { key, ...more } });
