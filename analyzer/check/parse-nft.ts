// ct-analyze check: an `nft -f` ruleset (nested blocks or `add` commands), in the documented subset, as the model.
import { CtError } from '../../common/errors.js';
import { parseCidr } from '../core/prefix.js';
import { type Token, TokenCursor, tokenize } from './nft-tokens.js';
import type { Chain, Hook, Match, Rule, Ruleset, TableFamily, Verdict } from './ruleset.js';
import {
  CT_STATES,
  chainName,
  HOOKS,
  icmpType,
  PRIORITIES,
  portRange,
  protoNumber,
  unsupported,
} from './ruleset.js';

interface Table {
  family: TableFamily;
  name: string;
  chains: Map<string, Chain>;
}

/** Parses the `nft -f` syntax: nested `table … { chain … { … } }` blocks and `add` commands. */
class NftParser extends TokenCursor {
  private readonly tables = new Map<string, Table>();
  /** Chains of other types (nat): their rules translate, they never filter. */
  private readonly ignored = new Set<string>();

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

/** Parses an `nft -f` file (the nested form `nft list ruleset` prints, or `add` commands). */
export function parseNft(source: string): Ruleset {
  return new NftParser(tokenize(source)).parse();
}
