// ct-analyze check: the one model an nftables or iptables-save ruleset becomes, and what both syntaxes share.
import { CtError, Exit } from '../../common/errors.js';
import type { Cidr, PortRange } from '../core/prefix.js';

export type TableFamily = 'inet' | 'ip' | 'ip6';
/** The filter hooks a first packet meets: input, forward (routed through), output (sent). */
export type Hook = 'input' | 'forward' | 'output';
export const HOOKS: readonly Hook[] = ['input', 'forward', 'output'];

/** One condition of a rule; `negate` is nft's `!=` (iptables' `!`). */
export type Match =
  | { kind: 'addr'; field: 'saddr' | 'daddr'; family: 4 | 6; cidrs: Cidr[]; negate: boolean }
  | { kind: 'l4proto'; protos: number[]; negate: boolean }
  /** `tcp dport …` also says "the packet is TCP": proto is part of the match. */
  | { kind: 'port'; proto: number; field: 'sport' | 'dport'; ranges: PortRange[]; negate: boolean }
  | { kind: 'ctstate'; states: string[]; negate: boolean }
  | { kind: 'icmp'; family: 4 | 6; types: number[]; negate: boolean }
  /** `iif lo`, `iifname "lo"`, `-i lo`: arrived on the loopback interface. */
  | { kind: 'iif-lo'; negate: boolean };

export type Verdict =
  | { kind: 'accept' | 'drop' | 'reject' | 'return' | 'continue' }
  | { kind: 'jump' | 'goto'; target: string };

export interface Rule {
  /** Line number (1-based) in the ruleset file where the rule starts. */
  readonly line: number;
  /** The rule as written (one line, whitespace collapsed). */
  readonly text: string;
  readonly matches: readonly Match[];
  /** `continue` for a rule without a verdict (counter, log): evaluation goes on. */
  readonly verdict: Verdict;
}

export interface BaseChain {
  readonly hook: Hook;
  readonly priority: number;
  readonly policy: 'accept' | 'drop';
}

export interface Chain {
  readonly family: TableFamily;
  readonly table: string;
  readonly name: string;
  readonly line: number;
  /** Present for a base chain (`type filter hook …`); regular chains are only jumped to. */
  base?: BaseChain;
  readonly rules: Rule[];
}

export interface Ruleset {
  readonly format: 'nft' | 'iptables';
  /** Every filter chain, in the order the file declares them. */
  readonly chains: readonly Chain[];
}

/** `inet filter input` */
export function chainName(c: Pick<Chain, 'family' | 'table' | 'name'>): string {
  return `${c.family} ${c.table} ${c.name}`;
}

export function unsupported(what: string, line: number, hint = ''): CtError {
  return new CtError(
    'ERULESET',
    `line ${line}: ${what} is outside the subset ct-analyze check evaluates${hint === '' ? '' : ` (${hint})`}: rewrite it in the documented subset (docs/rules.md, "ct-analyze check") or leave it out`,
    { exit: Exit.RUNTIME },
  );
}

// ---------------------------------------------------------------- values shared by both syntaxes

export const PROTOS: Record<string, number> = {
  tcp: 6,
  udp: 17,
  icmp: 1,
  icmpv6: 58,
  'ipv6-icmp': 58,
  icmp6: 58,
};

export const ICMP_TYPES: Record<string, number> = {
  'echo-reply': 0,
  'destination-unreachable': 3,
  'source-quench': 4,
  redirect: 5,
  'echo-request': 8,
  'router-advertisement': 9,
  'router-solicitation': 10,
  'time-exceeded': 11,
  'parameter-problem': 12,
  'timestamp-request': 13,
  'timestamp-reply': 14,
  'info-request': 15,
  'info-reply': 16,
  'address-mask-request': 17,
  'address-mask-reply': 18,
};

export const ICMPV6_TYPES: Record<string, number> = {
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'mld-listener-query': 130,
  'mld-listener-report': 131,
  'mld-listener-done': 132,
  'mld-listener-reduction': 132,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'nd-redirect': 137,
  'router-renumbering': 138,
  'ind-neighbor-solicit': 141,
  'ind-neighbor-advert': 142,
  'mld2-listener-report': 143,
};

/** ip6tables' names for ICMPv6 types, where they differ from nft's. */
export const IP6T_ICMP_ALIASES: Record<string, string> = {
  'router-solicitation': 'nd-router-solicit',
  'router-advertisement': 'nd-router-advert',
  'neighbour-solicitation': 'nd-neighbor-solicit',
  'neighbour-advertisement': 'nd-neighbor-advert',
  redirect: 'nd-redirect',
};

export const CT_STATES = ['new', 'established', 'related', 'invalid', 'untracked'];

/** nft's named priorities (filter family values). */
export const PRIORITIES: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

export function intIn(text: string, max: number): number | undefined {
  if (!/^\d{1,6}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

export function portRange(text: string, sep: '-' | ':'): PortRange | undefined {
  const parts = text.split(sep);
  if (parts.length > 2) return undefined;
  const from = intIn(parts[0] ?? '', 0xffff);
  const to = parts.length === 2 ? intIn(parts[1] ?? '', 0xffff) : from;
  if (from === undefined || to === undefined || from > to) return undefined;
  return { from, to };
}

export function protoNumber(text: string): number | undefined {
  return PROTOS[text] ?? intIn(text, 255);
}

export function icmpType(family: 4 | 6, text: string, line: number): number {
  const n = (family === 4 ? ICMP_TYPES : ICMPV6_TYPES)[text] ?? intIn(text, 255);
  if (n === undefined) throw unsupported(`icmp${family === 6 ? 'v6' : ''} type '${text}'`, line);
  return n;
}
