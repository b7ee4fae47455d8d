// ct-analyze check: an nftables or iptables-save ruleset, in the documented subset, as one model.
import { CtError, Exit } from '../../common/errors.js';
import { type Cidr, type PortRange, parseCidr } from '../core/prefix.js';

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

function unsupported(what: string, line: number, hint = ''): CtError {
  return new CtError(
    'ERULESET',
    `line ${line}: ${what} is outside the subset ct-analyze check evaluates${hint === '' ? '' : ` (${hint})`}: rewrite it in the documented subset (docs/rules.md, "ct-analyze check") or leave it out`,
    { exit: Exit.RUNTIME },
  );
}

// ---------------------------------------------------------------- values shared by both syntaxes

const PROTOS: Record<string, number> = {
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
const IP6T_ICMP_ALIASES: Record<string, string> = {
  'router-solicitation': 'nd-router-solicit',
  'router-advertisement': 'nd-router-advert',
  'neighbour-solicitation': 'nd-neighbor-solicit',
  'neighbour-advertisement': 'nd-neighbor-advert',
  redirect: 'nd-redirect',
};

const CT_STATES = ['new', 'established', 'related', 'invalid', 'untracked'];

/** nft's named priorities (filter family values). */
const PRIORITIES: Record<string, number> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

function intIn(text: string, max: number): number | undefined {
  if (!/^\d{1,6}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

function portRange(text: string, sep: '-' | ':'): PortRange | undefined {
  const parts = text.split(sep);
  if (parts.length > 2) return undefined;
  const from = intIn(parts[0] ?? '', 0xffff);
  const to = parts.length === 2 ? intIn(parts[1] ?? '', 0xffff) : from;
  if (from === undefined || to === undefined || from > to) return undefined;
  return { from, to };
}

function protoNumber(text: string): number | undefined {
  return PROTOS[text] ?? intIn(text, 255);
}

// ------------------------------------------------------------------------------ nft tokens

interface Token {
  /** A word, a string's contents, or one of `{ } , ;` and '\n' (the end of a line). */
  readonly text: string;
  readonly kind: 'word' | 'string' | 'punct' | 'end';
  readonly line: number;
}

function tokenize(source: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === '\n') {
      out.push({ text: '\n', kind: 'end', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (c === '\\' && source[i + 1] === '\n') {
      // A continued line is one statement.
      line++;
      i += 2;
    } else if (c === ';') {
      out.push({ text: ';', kind: 'end', line });
      i++;
    } else if (c === '{' || c === '}' || c === ',') {
      out.push({ text: c, kind: 'punct', line });
      i++;
    } else if (c === '"') {
      const end = source.indexOf('"', i + 1);
      const nl = source.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end)) throw unsupported('an unterminated string', line);
      out.push({ text: source.slice(i + 1, end), kind: 'string', line });
      i = end + 1;
    } else {
      let j = i;
      while (j < source.length && !' \t\r\n;{},"#'.includes(source[j] as string)) j++;
      out.push({ text: source.slice(i, j), kind: 'word', line });
      i = j;
    }
  }
  out.push({ text: '\n', kind: 'end', line });
  return out;
}

interface Table {
  family: TableFamily;
  name: string;
  chains: Map<string, Chain>;
}

/** Parses the `nft -f` syntax: nested `table … { chain … { … } }` blocks and `add` commands. */
class NftParser {
  private i = 0;
  private readonly tables = new Map<string, Table>();
  /** Chains of other types (nat): their rules translate, they never filter. */
  private readonly ignored = new Set<string>();

  constructor(private readonly tokens: Token[]) {}

  parse(): Ruleset {
    while (!this.eof()) {
      if (this.skipEnds()) continue;
      const t = this.next();
      if (t.text === 'table') this.tableCommand();
      else if (t.text === 'add' || t.text === 'create') this.addCommand();
      else if (t.text === 'delete' || t.text === 'destroy') this.deleteCommand(t);
      else if (t.text === 'flush' && this.peek().text === 'ruleset') {
        this.next();
        this.tables.clear();
        this.endStatement();
      } else throw unsupported(`nft command '${t.text}'`, t.line);
    }
    const chains = [...this.tables.values()].flatMap((tb) => [...tb.chains.values()]);
    for (const c of chains) {
      for (const r of c.rules) {
        if (r.verdict.kind === 'jump' || r.verdict.kind === 'goto') {
          const key = `${c.family} ${c.table} ${r.verdict.target}`;
          const target = this.tables.get(`${c.family} ${c.table}`)?.chains.get(r.verdict.target);
          if (target === undefined && !this.ignored.has(key)) {
            throw new CtError(
              'ERULESET',
              `line ${r.line}: ${r.verdict.kind} to chain '${r.verdict.target}', which table ${c.family} ${c.table} does not have: add the chain or fix the name`,
            );
          }
          if (target?.base !== undefined) {
            throw unsupported(`a ${r.verdict.kind} to base chain '${r.verdict.target}'`, r.line);
          }
        }
      }
    }
    return { format: 'nft', chains };
  }

  private eof(): boolean {
    return this.i >= this.tokens.length;
  }

  private peek(): Token {
    return this.tokens[this.i] ?? { text: '\n', kind: 'end', line: this.lastLine() };
  }

  private lastLine(): number {
    return this.tokens[this.tokens.length - 1]?.line ?? 1;
  }

  private next(): Token {
    const t = this.peek();
    this.i++;
    return t;
  }

  private skipEnds(): boolean {
    let skipped = false;
    while (!this.eof() && this.peek().kind === 'end') {
      this.i++;
      skipped = true;
    }
    return skipped;
  }

  private word(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word' && t.kind !== 'string') {
      throw new CtError(
        'ERULESET',
        `line ${t.line}: expected ${what}, found '${t.text === '\n' ? 'end of line' : t.text}': fix the ruleset (nft -c -f FILE checks it)`,
      );
    }
    return t;
  }

  private expect(text: string): Token {
    const t = this.next();
    if (t.text !== text) {
      throw new CtError(
        'ERULESET',
        `line ${t.line}: expected '${text}', found '${t.text === '\n' ? 'end of line' : t.text}': fix the ruleset (nft -c -f FILE checks it)`,
      );
    }
    return t;
  }

  private endStatement(): void {
    const t = this.peek();
    if (t.kind === 'end') this.i++;
    else if (t.text !== '}') throw unsupported(`'${t.text}'`, t.line);
  }

  private family(): TableFamily {
    const t = this.word('a table family');
    if (t.text === 'inet' || t.text === 'ip' || t.text === 'ip6') return t.text;
    throw unsupported(`table family '${t.text}'`, t.line, 'inet, ip and ip6 are');
  }

  /** `table FAMILY NAME` (declares it), or with `{ … }` its chains. */
  private tableCommand(): void {
    const family = this.family();
    const name = this.word('a table name').text;
    const table = this.table(family, name);
    if (this.peek().text === '{') {
      this.next();
      this.tableBody(table);
    } else this.endStatement();
  }

  private table(family: TableFamily, name: string): Table {
    const key = `${family} ${name}`;
    let tb = this.tables.get(key);
    if (tb === undefined) {
      tb = { family, name, chains: new Map() };
      this.tables.set(key, tb);
    }
    return tb;
  }

  private addCommand(): void {
    const what = this.word('table, chain or rule');
    if (what.text === 'table') {
      this.tableCommand();
      return;
    }
    if (what.text === 'chain') {
      const family = this.family();
      const table = this.existingTable(family, this.word('a table name'));
      const name = this.word('a chain name');
      const chain = this.chain(table, name);
      if (this.peek().text === '{') {
        this.next();
        this.chainBody(table, chain);
      } else this.endStatement();
      return;
    }
    if (what.text === 'rule') {
      const family = this.family();
      const table = this.existingTable(family, this.word('a table name'));
      const name = this.word('a chain name');
      const chain = table.chains.get(name.text);
      if (this.ignored.has(`${family} ${table.name} ${name.text}`)) {
        this.skipStatement();
        return;
      }
      if (chain === undefined) {
        throw new CtError(
          'ERULESET',
          `line ${name.line}: add rule to chain '${name.text}', which table ${family} ${table.name} does not have yet: add the chain first`,
        );
      }
      const rule = this.rule();
      if (rule !== undefined) chain.rules.push(rule);
      return;
    }
    throw unsupported(`nft 'add ${what.text}'`, what.line);
  }

  private existingTable(family: TableFamily, name: Token): Table {
    const tb = this.tables.get(`${family} ${name.text}`);
    if (tb === undefined) {
      throw new CtError(
        'ERULESET',
        `line ${name.line}: table ${family} ${name.text} is used before it is added: add it first`,
      );
    }
    return tb;
  }

  private deleteCommand(t: Token): void {
    const what = this.word('table');
    if (what.text !== 'table') throw unsupported(`nft '${t.text} ${what.text}'`, what.line);
    const family = this.family();
    const name = this.word('a table name').text;
    this.tables.delete(`${family} ${name}`);
    for (const key of [...this.ignored]) {
      if (key.startsWith(`${family} ${name} `)) this.ignored.delete(key);
    }
    this.endStatement();
  }

  private tableBody(table: Table): void {
    for (;;) {
      this.skipEnds();
      const t = this.next();
      if (t.text === '}') {
        this.endStatement();
        return;
      }
      if (t.text === 'chain') {
        const name = this.word('a chain name');
        const chain = this.chain(table, name);
        this.expect('{');
        this.chainBody(table, chain);
      } else if (t.text === 'comment') {
        this.word('a comment');
        this.endStatement();
      } else if (t.kind === 'end' && this.eof()) {
        throw new CtError('ERULESET', `line ${t.line}: table ${table.name} has no closing '}'`);
      } else throw unsupported(`'${t.text}' in a table`, t.line);
    }
  }

  private chain(table: Table, name: Token): Chain {
    let chain = table.chains.get(name.text);
    if (chain === undefined) {
      chain = {
        family: table.family,
        table: table.name,
        name: name.text,
        line: name.line,
        rules: [],
      };
      table.chains.set(name.text, chain);
    }
    return chain;
  }

  private chainBody(table: Table, chain: Chain): void {
    for (;;) {
      this.skipEnds();
      const t = this.peek();
      if (this.eof()) throw new CtError('ERULESET', `chain ${chain.name} has no closing '}'`);
      if (t.text === '}') {
        this.next();
        this.endStatement();
        return;
      }
      if (t.text === 'type') {
        this.next();
        if (this.chainType(chain, t)) {
          // A nat chain translates; the flow records the translation already.
          table.chains.delete(chain.name);
          this.ignored.add(chainName(chain));
          this.skipBlock();
          return;
        }
      } else if (t.text === 'policy') {
        this.next();
        const p = this.word('accept or drop');
        if (p.text !== 'accept' && p.text !== 'drop') {
          throw unsupported(`policy '${p.text}'`, p.line);
        }
        if (chain.base === undefined) {
          throw unsupported('a policy on a chain without a hook', p.line);
        }
        chain.base = { ...chain.base, policy: p.text };
        this.endStatement();
      } else if (t.text === 'comment') {
        this.next();
        this.word('a comment');
        this.endStatement();
      } else {
        const rule = this.rule();
        if (rule !== undefined) chain.rules.push(rule);
      }
    }
  }

  /** `type filter hook input priority filter + 10;`; true for a nat chain (skipped). */
  private chainType(chain: Chain, at: Token): boolean {
    const type = this.word('a chain type');
    this.expect('hook');
    const hook = this.word('a hook');
    if (type.text === 'nat') return true;
    if (type.text !== 'filter') throw unsupported(`chain type '${type.text}'`, type.line);
    if (!(HOOKS as readonly string[]).includes(hook.text)) {
      throw unsupported(
        `a filter chain on hook '${hook.text}'`,
        hook.line,
        'input, forward and output are',
      );
    }
    if (this.peek().text === 'device') throw unsupported("'device'", at.line);
    this.expect('priority');
    const parts: Token[] = [];
    while (this.peek().kind !== 'end' && this.peek().text !== '}') parts.push(this.next());
    const priority = this.priority(parts, at.line);
    chain.base = { hook: hook.text as Hook, priority, policy: chain.base?.policy ?? 'accept' };
    this.endStatement();
    return false;
  }

  private priority(parts: Token[], line: number): number {
    const text = parts.map((p) => p.text).join(' ');
    const m = /^(-?\d+|[a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(text);
    const base = m === null ? undefined : (PRIORITIES[m[1] as string] ?? Number(m[1]));
    if (m === null || base === undefined || Number.isNaN(base)) {
      throw unsupported(`priority '${text}'`, line);
    }
    const off = m[3] === undefined ? 0 : Number(m[3]);
    return m[2] === '-' ? base - off : base + off;
  }

  /** Skips to the end of the enclosing `{ … }` block. */
  private skipBlock(): void {
    let depth = 1;
    while (!this.eof() && depth > 0) {
      const t = this.next();
      if (t.text === '{') depth++;
      else if (t.text === '}') depth--;
    }
    this.endStatement();
  }

  private skipStatement(): void {
    let depth = 0;
    while (!this.eof()) {
      const t = this.peek();
      if (depth === 0 && (t.kind === 'end' || t.text === '}')) break;
      this.next();
      if (t.text === '{') depth++;
      else if (t.text === '}') depth--;
    }
    this.endStatement();
  }

  /** One value or an anonymous set `{ a, b-c }` of them (a set may span lines). */
  private values(): Token[] {
    const t = this.next();
    if (t.text !== '{') {
      if (t.kind !== 'word' && t.kind !== 'string') {
        throw unsupported(
          `'${t.text === '\n' ? 'end of line' : t.text}' where a value belongs`,
          t.line,
        );
      }
      if (t.text.startsWith('@') || t.text.startsWith('$')) {
        throw unsupported(`named set or variable '${t.text}'`, t.line);
      }
      // ct state established,related: a list without braces.
      const out = [t];
      while (this.peek().text === ',') {
        this.next();
        out.push(this.word('a value'));
      }
      return out;
    }
    const out: Token[] = [];
    for (;;) {
      const v = this.next();
      if (v.text === '}') return out;
      if (v.text === ',' || v.kind === 'end') {
        if (this.eof()) throw new CtError('ERULESET', `line ${t.line}: a set has no closing '}'`);
        continue;
      }
      if (v.text === '{') throw unsupported('a nested set', v.line);
      out.push(v);
    }
  }

  private negation(): boolean {
    const t = this.peek();
    if (t.text === '!=') {
      this.next();
      return true;
    }
    if (t.text === '==') this.next();
    return false;
  }

  /** A rule up to the end of its line (or the chain's `}`); undefined for an empty one. */
  private rule(): Rule | undefined {
    const start = this.peek().line;
    const from = this.i;
    const matches: Match[] = [];
    let verdict: Verdict | undefined;
    const done = () => this.peek().kind === 'end' || this.peek().text === '}' || this.eof();
    while (!done()) {
      const t = this.next();
      if (verdict !== undefined && t.text !== 'comment') {
        throw unsupported(`'${t.text}' after the verdict`, t.line);
      }
      switch (t.text) {
        case 'ip':
        case 'ip6':
          matches.push(this.ipMatch(t));
          break;
        case 'meta':
          matches.push(this.metaMatch(this.word('a meta key')));
          break;
        case 'iif':
        case 'iifname':
          matches.push(this.ifaceMatch(t));
          break;
        case 'l4proto':
          matches.push(this.l4proto());
          break;
        case 'tcp':
        case 'udp':
          matches.push(this.portMatch(t));
          break;
        case 'ct':
          matches.push(this.ctMatch());
          break;
        case 'icmp':
        case 'icmpv6':
          matches.push(this.icmpMatch(t));
          break;
        case 'counter':
          // `nft list` prints the counts: `counter packets 3 bytes 180`.
          while (this.peek().text === 'packets' || this.peek().text === 'bytes') {
            this.next();
            this.word('a number');
          }
          break;
        case 'log':
          while (
            ['prefix', 'level', 'group', 'snaplen', 'queue-threshold', 'flags'].includes(
              this.peek().text,
            )
          ) {
            this.next();
            this.word('a log option');
          }
          break;
        case 'comment':
          this.word('a comment');
          break;
        case 'accept':
        case 'drop':
        case 'return':
        case 'continue':
          verdict = { kind: t.text };
          break;
        case 'reject':
          if (this.peek().text === 'with') {
            this.next();
            const what = this.word('icmp, icmpv6, icmpx or tcp');
            if (what.text === 'tcp') this.expect('reset');
            else if (['icmp', 'icmpv6', 'icmpx'].includes(what.text)) {
              if (this.peek().text === 'type') this.next();
              this.word('a reject type');
            } else throw unsupported(`'reject with ${what.text}'`, what.line);
          }
          verdict = { kind: 'reject' };
          break;
        case 'jump':
        case 'goto':
          verdict = { kind: t.text, target: this.word('a chain name').text };
          break;
        default:
          throw unsupported(`'${t.text}'`, t.line);
      }
    }
    let text = '';
    let depth = 0;
    let glue = false;
    for (const tok of this.tokens.slice(from, this.i)) {
      if (tok.kind === 'end') continue;
      if (tok.text === '{') depth++;
      if (tok.text === '}') depth--;
      const word = tok.kind === 'string' ? `"${tok.text}"` : tok.text;
      // `{ a, b }` as nft prints sets; `established,related` stays one word.
      text += tok.text === ',' || text === '' || glue ? word : ` ${word}`;
      glue = tok.text === ',' && depth === 0;
    }
    this.endStatement();
    if (matches.length === 0 && verdict === undefined && text === '') return undefined;
    return { line: start, text, matches, verdict: verdict ?? { kind: 'continue' } };
  }

  private ipMatch(t: Token): Match {
    const field = this.word('saddr or daddr');
    const family = t.text === 'ip' ? 4 : 6;
    if (field.text === 'protocol' && family === 4) return this.l4proto();
    if (field.text === 'nexthdr' && family === 6) return this.l4proto();
    if (field.text !== 'saddr' && field.text !== 'daddr') {
      throw unsupported(`'${t.text} ${field.text}'`, field.line);
    }
    const negate = this.negation();
    const cidrs = this.values().map((v) => {
      const c = parseCidr(v.text.includes('-') ? '' : v.text);
      if (c === undefined || c.family !== family) {
        throw unsupported(
          `'${v.text}' as an ${t.text} address`,
          v.line,
          'addresses and prefixes are',
        );
      }
      return c;
    });
    return { kind: 'addr', field: field.text, family, cidrs, negate };
  }

  private metaMatch(key: Token): Match {
    if (key.text === 'l4proto') return this.l4proto();
    if (key.text === 'iif' || key.text === 'iifname') return this.ifaceMatch(key);
    throw unsupported(`'meta ${key.text}'`, key.line);
  }

  private ifaceMatch(t: Token): Match {
    const negate = this.negation();
    const v = this.values();
    if (v.length !== 1 || v[0]?.text !== 'lo') {
      throw unsupported(
        `'${t.text} ${v.map((x) => x.text).join(',')}'`,
        t.line,
        'only the loopback interface lo is known for a recorded flow',
      );
    }
    return { kind: 'iif-lo', negate };
  }

  private l4proto(): Match {
    const negate = this.negation();
    const protos = this.values().map((v) => {
      const n = protoNumber(v.text);
      if (n === undefined) throw unsupported(`protocol '${v.text}'`, v.line);
      return n;
    });
    return { kind: 'l4proto', protos, negate };
  }

  private portMatch(t: Token): Match {
    const field = this.word('sport or dport');
    if (field.text !== 'sport' && field.text !== 'dport') {
      throw unsupported(`'${t.text} ${field.text}'`, field.line);
    }
    const negate = this.negation();
    const ranges = this.values().map((v) => {
      const r = portRange(v.text, '-');
      if (r === undefined)
        throw unsupported(`port '${v.text}'`, v.line, 'port numbers and ranges a-b are');
      return r;
    });
    return { kind: 'port', proto: t.text === 'tcp' ? 6 : 17, field: field.text, ranges, negate };
  }

  private ctMatch(): Match {
    const key = this.word('state');
    if (key.text !== 'state') throw unsupported(`'ct ${key.text}'`, key.line);
    const negate = this.negation();
    const states = this.values().map((v) => {
      if (!CT_STATES.includes(v.text)) throw unsupported(`ct state '${v.text}'`, v.line);
      return v.text;
    });
    return { kind: 'ctstate', states, negate };
  }

  private icmpMatch(t: Token): Match {
    const key = this.word('type');
    if (key.text !== 'type') throw unsupported(`'${t.text} ${key.text}'`, key.line);
    const family = t.text === 'icmp' ? 4 : 6;
    const negate = this.negation();
    const types = this.values().map((v) => icmpType(family, v.text, v.line));
    return { kind: 'icmp', family, types, negate };
  }
}

function icmpType(family: 4 | 6, text: string, line: number): number {
  const n = (family === 4 ? ICMP_TYPES : ICMPV6_TYPES)[text] ?? intIn(text, 255);
  if (n === undefined) throw unsupported(`icmp${family === 6 ? 'v6' : ''} type '${text}'`, line);
  return n;
}

/** Parses an `nft -f` file (the nested form `nft list ruleset` prints, or `add` commands). */
export function parseNft(source: string): Ruleset {
  return new NftParser(tokenize(source)).parse();
}

// --------------------------------------------------------------------------- iptables-save

/** Splits an iptables-save line into words, honouring "…" quoting. */
function shellWords(line: string, at: number): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1].replace(/\\(.)/g, '$1'));
    else if ((m[2] as string).includes('"')) throw unsupported('an unterminated string', at);
    else out.push(m[2] as string);
  }
  return out;
}

const IPT_HOOKS: Record<string, Hook> = { INPUT: 'input', FORWARD: 'forward', OUTPUT: 'output' };
const IPT_VERDICTS: Record<string, Verdict['kind']> = {
  ACCEPT: 'accept',
  DROP: 'drop',
  REJECT: 'reject',
  RETURN: 'return',
};

interface IptPart {
  family: 4 | 6 | undefined;
  /** chain name → its chain (family filled in when the part ends). */
  chains: Map<string, { line: number; policy?: 'accept' | 'drop'; rules: Rule[] }>;
}

/**
 * Parses iptables-save or ip6tables-save output (or both, as `ct-analyze rules --format
 * iptables` prints them, separated by `# ip6tables-restore:`). Only the filter table filters;
 * the nat table's translations are already in each recorded flow.
 */
export function parseIptables(source: string): Ruleset {
  const lines = source.split('\n');
  const parts: IptPart[] = [];
  let part: IptPart = { family: undefined, chains: new Map() };
  parts.push(part);
  let table: string | undefined;
  const newPart = (family: 4 | 6 | undefined) => {
    if (part.chains.size === 0) part.family = family;
    else {
      part = { family, chains: new Map() };
      parts.push(part);
    }
  };
  lines.forEach((raw, k) => {
    const n = k + 1;
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      if (/^# (ip6tables-restore|Generated by ip6tables-save)/.test(line)) newPart(6);
      else if (/^# (iptables-restore|Generated by iptables-save)/.test(line)) newPart(4);
      return;
    }
    if (line.startsWith('*')) {
      table = line.slice(1);
      if (table !== 'filter' && table !== 'nat' && table !== 'mangle' && table !== 'raw') {
        throw unsupported(`table '${table}'`, n);
      }
      return;
    }
    if (line === 'COMMIT') {
      table = undefined;
      return;
    }
    if (table === undefined) throw unsupported(`'${line}' outside a *table … COMMIT block`, n);
    if (line.startsWith(':')) {
      const [name = '', policy = ''] = line.slice(1).split(/\s+/);
      if (table !== 'filter') {
        if (policy !== 'ACCEPT') throw unsupported(`policy ${policy} in table ${table}`, n);
        return;
      }
      if (IPT_HOOKS[name] !== undefined) {
        if (policy !== 'ACCEPT' && policy !== 'DROP') throw unsupported(`policy '${policy}'`, n);
        part.chains.set(name, {
          line: n,
          policy: policy === 'ACCEPT' ? 'accept' : 'drop',
          rules: [],
        });
      } else {
        if (policy !== '-') throw unsupported(`policy '${policy}' on a user chain`, n);
        part.chains.set(name, { line: n, rules: [] });
      }
      return;
    }
    let words = shellWords(line, n);
    // iptables-save -c puts the counters first: [packets:bytes] -A …
    if (/^\[\d+:\d+\]$/.test(words[0] ?? '')) words = words.slice(1);
    if (table === 'nat') return;
    if (table !== 'filter') {
      throw unsupported(`a rule in table ${table}`, n, 'only the filter table is evaluated');
    }
    if (words[0] !== '-A')
      throw unsupported(`'${words[0]}'`, n, 'iptables-save lines are -A rules');
    const chainName = words[1] ?? '';
    const chain = part.chains.get(chainName);
    if (chain === undefined) {
      throw new CtError(
        'ERULESET',
        `line ${n}: -A ${chainName} before its ':${chainName}' line: declare the chain first`,
      );
    }
    const { rule, family } = iptablesRule(words.slice(2), n, line);
    if (family !== undefined) {
      if (part.family !== undefined && part.family !== family) {
        throw new CtError(
          'ERULESET',
          `line ${n}: an IPv${family} address in IPv${part.family} rules: keep iptables-save and ip6tables-save output apart, or separate them with a '# ip6tables-restore:' line`,
        );
      }
      part.family = family;
    }
    chain.rules.push(rule);
  });
  const chains: Chain[] = [];
  for (const p of parts) {
    if (p.chains.size === 0) continue;
    if (p.family === undefined) {
      throw new CtError(
        'ERULESET',
        'cannot tell whether these rules are iptables (IPv4) or ip6tables (IPv6) rules: keep the first line iptables-save writes (# Generated by iptables-save or ip6tables-save)',
      );
    }
    const family: TableFamily = p.family === 4 ? 'ip' : 'ip6';
    for (const [name, c] of p.chains) {
      const hook = IPT_HOOKS[name];
      const chain: Chain = { family, table: 'filter', name, line: c.line, rules: c.rules };
      if (hook !== undefined) chain.base = { hook, priority: 0, policy: c.policy ?? 'accept' };
      chains.push(chain);
      for (const r of c.rules) {
        if (
          (r.verdict.kind === 'jump' || r.verdict.kind === 'goto') &&
          !p.chains.has(r.verdict.target)
        ) {
          throw new CtError(
            'ERULESET',
            `line ${r.line}: -j ${r.verdict.target}: no such chain (declare it with :${r.verdict.target} - [0:0]) and no supported target (ACCEPT, DROP, REJECT, RETURN, LOG)`,
          );
        }
        if (
          (r.verdict.kind === 'jump' || r.verdict.kind === 'goto') &&
          IPT_HOOKS[r.verdict.target] !== undefined
        ) {
          throw unsupported(`a jump to built-in chain ${r.verdict.target}`, r.line);
        }
      }
    }
  }
  return { format: 'iptables', chains };
}

/** Targets that are not chains and not in the subset: an error, never a jump. */
const IPT_TARGETS = [
  'MARK',
  'CONNMARK',
  'NFQUEUE',
  'TCPMSS',
  'CT',
  'NOTRACK',
  'SNAT',
  'DNAT',
  'MASQUERADE',
  'REDIRECT',
  'TPROXY',
  'NFLOG',
  'AUDIT',
  'CLASSIFY',
  'TRACE',
  'TEE',
  'SET',
];

const IPT_MODULES = [
  'tcp',
  'udp',
  'multiport',
  'conntrack',
  'state',
  'comment',
  'icmp',
  'icmp6',
  'icmpv6',
];

/** The options of one `-A CHAIN …` line after the chain name. */
function iptablesRule(words: string[], line: number, text: string): { rule: Rule; family?: 4 | 6 } {
  const matches: Match[] = [];
  let verdict: Verdict | undefined;
  let proto: number | undefined;
  let family: 4 | 6 | undefined;
  let negate = false;
  let i = 0;
  const arg = (opt: string) => {
    const v = words[i++];
    if (v === undefined)
      throw new CtError('ERULESET', `line ${line}: ${opt} needs a value: fix the rule`);
    return v;
  };
  const needProto = (opt: string): number => {
    if (proto !== 6 && proto !== 17) throw unsupported(`${opt} without -p tcp or -p udp`, line);
    return proto;
  };
  const ports = (opt: string, list: string) =>
    list.split(',').map((p) => {
      const r = portRange(p, ':');
      if (r === undefined) throw unsupported(`${opt} '${p}'`, line);
      return r;
    });
  while (i < words.length) {
    const w = words[i++] as string;
    if (w === '!') {
      negate = true;
      continue;
    }
    const neg = negate;
    negate = false;
    switch (w) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const cidrs = arg(w)
          .split(',')
          .map((a) => {
            const c = parseCidr(a);
            if (c === undefined)
              throw unsupported(`${w} '${a}'`, line, 'addresses and prefixes are');
            return c;
          });
        const f = cidrs[0]?.family ?? 4;
        if (cidrs.some((c) => c.family !== f) || (family !== undefined && family !== f)) {
          throw unsupported('IPv4 and IPv6 addresses in one rule', line);
        }
        family = f;
        const field = w === '-s' || w === '--source' ? 'saddr' : 'daddr';
        matches.push({ kind: 'addr', field, family: f, cidrs, negate: neg });
        break;
      }
      case '-p':
      case '--protocol': {
        const v = arg(w);
        if (v === 'all') break;
        const n = protoNumber(v);
        if (n === undefined) throw unsupported(`protocol '${v}'`, line);
        if (n === 58) family = family ?? 6;
        if (!neg) proto = n;
        matches.push({ kind: 'l4proto', protos: [n], negate: neg });
        break;
      }
      case '-i':
      case '--in-interface': {
        const v = arg(w);
        if (v !== 'lo')
          throw unsupported(
            `-i ${v}`,
            line,
            'only the loopback interface lo is known for a recorded flow',
          );
        matches.push({ kind: 'iif-lo', negate: neg });
        break;
      }
      case '-m':
      case '--match': {
        const m = arg(w);
        if (!IPT_MODULES.includes(m)) throw unsupported(`-m ${m}`, line);
        break;
      }
      case '--sport':
      case '--source-port':
      case '--dport':
      case '--destination-port':
      case '--sports':
      case '--source-ports':
      case '--dports':
      case '--destination-ports': {
        const p = needProto(w);
        const field = w.startsWith('--s') ? 'sport' : 'dport';
        matches.push({ kind: 'port', proto: p, field, ranges: ports(w, arg(w)), negate: neg });
        break;
      }
      case '--ctstate':
      case '--state': {
        const states = arg(w)
          .split(',')
          .map((s) => {
            const v = s.toLowerCase();
            if (!CT_STATES.includes(v)) throw unsupported(`${w} '${s}'`, line);
            return v;
          });
        matches.push({ kind: 'ctstate', states, negate: neg });
        break;
      }
      case '--icmp-type':
      case '--icmpv6-type': {
        const f: 4 | 6 = w === '--icmp-type' ? 4 : 6;
        const v = arg(w);
        if (v.includes('/')) throw unsupported(`${w} with a code '${v}'`, line);
        const name = (f === 6 ? IP6T_ICMP_ALIASES[v] : undefined) ?? v;
        matches.push({ kind: 'icmp', family: f, types: [icmpType(f, name, line)], negate: neg });
        family = family ?? f;
        break;
      }
      case '--comment':
        arg(w);
        break;
      case '-j':
      case '--jump':
      case '-g':
      case '--goto': {
        const target = arg(w);
        const kind = IPT_VERDICTS[target];
        if (target === 'LOG') {
          verdict = { kind: 'continue' };
        } else if (kind !== undefined && (w === '-j' || w === '--jump')) {
          verdict = { kind } as Verdict;
        } else if (IPT_TARGETS.includes(target)) {
          throw unsupported(`target ${target}`, line);
        } else {
          verdict = { kind: w === '-g' || w === '--goto' ? 'goto' : 'jump', target };
        }
        break;
      }
      case '--reject-with':
        if (verdict?.kind !== 'reject') throw unsupported('--reject-with without -j REJECT', line);
        arg(w);
        if ((words[i - 1] ?? '').startsWith('icmp6')) family = family ?? 6;
        break;
      case '--log-prefix':
      case '--log-level':
        arg(w);
        break;
      case '--log-tcp-options':
      case '--log-ip-options':
      case '--log-uid':
        break;
      default:
        throw unsupported(`'${w}'`, line);
    }
  }
  const rule: Rule = {
    line,
    text: text.trim().replace(/\s+/g, ' '),
    matches,
    verdict: verdict ?? { kind: 'continue' },
  };
  return family === undefined ? { rule } : { rule, family };
}

/** nft unless the file looks like iptables-save output (`*filter`, `:INPUT …`, `-A …`). */
export function parseRuleset(source: string): Ruleset {
  const first = source.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  return first !== undefined && /^(\*|:|-A\s)/.test(first.trim())
    ? parseIptables(source)
    : parseNft(source);
}
