// ct-analyze check: an iptables-save file made ready for translation to nft, and the rules iptables-restore-translate cannot translate spliced in from iptables-nft-restore.
import type { NftJson, NftObject } from './nft-json.js';

/** One `-A CHAIN …` line of an iptables-save file. */
export interface SavedRule {
  readonly table: string;
  readonly chain: string;
  /** 1-based line in the file. */
  readonly line: number;
  /** The line as the translator read it (after prepareSaved). */
  readonly text: string;
}

/** The save text for loading, the text for the translator, and what was left out. */
export interface PreparedSave {
  /** nfacct matches blanked. */
  readonly text: string;
  /** The same, with `-m tcp`/`-m udp` after `-p tcp`/`-p udp` dropped: what iptables-nft-restore reads. */
  readonly forRestore: string;
  /**
   * The same again, numeric ICMPv6 types taken out and marked (ICMPV6_TYPE), and the built-in
   * chains rules use declared where the file does not: what the translator reads.
   */
  readonly forTranslation: string;
  /** The file's line of a forTranslation line (declarations were added to it). */
  readonly fileLine: (translationLine: number) => number;
  /** The marked ICMPv6 matches, by mark, as nft writes them. */
  readonly icmpv6: ReadonlyMap<string, string>;
  readonly notLoaded: readonly string[];
}

// `-m nfacct --nfacct-name NAME`: the object it counts into is made by nfnetlink_acct, never by
// iptables-restore, so a save file that uses one does not load in a fresh namespace (ENOENT).
const NFACCT = /(^|\s)-m\s+nfacct\s+--nfacct-name\s+("[^"]*"|\S+)(?=\s|$)/g;
// iptables 1.8.9's translator drops the protocol of `-p tcp -m tcp` when the match has no
// option (`-p tcp -m tcp -j ACCEPT` becomes `accept` for every protocol, measured): without
// `-m tcp`, iptables loads the same match implicitly for `--dport` and the like, and the
// translator keeps `ip protocol tcp`.
const PROTO_MATCH = /(^|\s)-m\s+(tcp|udp|udplite|sctp|dccp)(?=\s|$)/g;
// ip6tables 1.8.9's translator knows ICMPv6 types by name only: `--icmpv6-type 141` (inverse
// ND, MLD: 130–132 and 141–153, which ufw allows) leaves the whole rule untranslated. Such a
// match is taken out and the rule marked with a comment; the translated rule gets the match
// back as nft writes it (`icmpv6 type 141`), and nft reads it.
const ICMPV6_TYPE = /(^|\s)(?:-m\s+icmp6\s+)?--icmpv6-type\s+(\d{1,3})(?:\/(\d{1,3}))?(?=\s|$)/;
const MARK = 'ct-analyze-icmpv6-';

/**
 * Blanks every nfacct match (nfacct counts, it does not filter), keeping each line's number,
 * and notes each; also returns the text the translator should read.
 */
export function prepareSaved(text: string): PreparedSave {
  const notLoaded: string[] = [];
  const lines = text.split('\n').map((l, i) => {
    if (!/^-[AI]\s/.test(l) || !/-m\s+nfacct/.test(l)) return l;
    return l.replace(NFACCT, (whole, lead: string, name: string) => {
      notLoaded.push(
        `line ${i + 1}: \`-m nfacct --nfacct-name ${name}\` left out: nfacct counts packets, it does not filter, and its object is made outside iptables-save`,
      );
      return lead + ' '.repeat(whole.length - lead.length);
    });
  });
  const forRestore = lines.map((l) => {
    if (!/^-[AI]\s/.test(l)) return l;
    return l.replace(PROTO_MATCH, (whole, lead: string, proto: string) => {
      const given = new RegExp(`(?:^|\\s)(!\\s+)?(?:-p|--protocol)\\s+${proto}(?=\\s|$)`).exec(l);
      // Only where the same protocol is given, not negated: else the match is the rule's own.
      return given && given[1] === undefined
        ? lead + ' '.repeat(whole.length - lead.length)
        : whole;
    });
  });
  const icmpv6 = new Map<string, string>();
  const forTranslation = forRestore.map((l, i) => {
    const m = ICMPV6_TYPE.exec(l);
    if (!/^-[AI]\s/.test(l) || m === null) return l;
    // A negated type, or a rule with its own comment (nft keeps one), stays as it is.
    if (/!\s*$/.test(l.slice(0, m.index + 1)) || /(^|\s)-m\s+comment(\s|$)/.test(l)) return l;
    const [whole, lead, type, code] = m as unknown as [string, string, string, string | undefined];
    const mark = `${MARK}${i + 1}`;
    icmpv6.set(mark, `icmpv6 type ${type}${code === undefined ? '' : ` icmpv6 code ${code}`}`);
    const rest = l.slice(m.index + whole.length).trimStart();
    return `${l.slice(0, m.index + lead.length)}${rest} -m comment --comment ${mark}`;
  });
  const declared = declareBuiltins(forTranslation);
  return {
    text: lines.join('\n'),
    forRestore: forRestore.join('\n'),
    forTranslation: declared.lines.join('\n'),
    fileLine: declared.fileLine,
    icmpv6,
    notLoaded,
  };
}

/** Each table's built-in chains (their hooks), as iptables-nft-restore creates them. */
const BUILTINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/**
 * A file written for `iptables-restore --noflush` (its own chains, jumps from built-in ones it
 * does not declare: what `ct-analyze rules --format iptables` hooks in) loads with
 * iptables-nft-restore, which makes a missing built-in chain with policy ACCEPT; the translator
 * would leave it out and nft refuse the jump. Its declaration is added after the `*table` line,
 * policy ACCEPT as iptables would have it.
 */
function declareBuiltins(lines: readonly string[]): {
  lines: string[];
  fileLine: (line: number) => number;
} {
  const out: string[] = [];
  /** The output line each added declaration took (1-based), in order. */
  const added: number[] = [];
  let start = -1;
  let table = '';
  const declared = new Set<string>();
  const used = new Set<string>();
  for (const l of lines) {
    const t = /^\*(\S+)/.exec(l);
    if (t) {
      [table, start] = [t[1] ?? '', out.length];
      declared.clear();
      used.clear();
    }
    const d = /^:(\S+)/.exec(l);
    if (d) declared.add(d[1] ?? '');
    const r = /^-[AI]\s+(\S+)/.exec(l);
    if (r) used.add(r[1] ?? '');
    if (/^COMMIT\s*$/.test(l) && start >= 0) {
      const missing = (BUILTINS[table] ?? []).filter((c) => used.has(c) && !declared.has(c));
      out.splice(start + 1, 0, ...missing.map((c) => `:${c} ACCEPT [0:0]`));
      for (let i = 0; i < missing.length; i++) added.push(start + 2 + i);
      start = -1;
    }
    out.push(l);
  }
  const fileLine = (line: number) => line - added.filter((a) => a < line).length;
  return { lines: out, fileLine };
}

/** The translator's nft text with each marked ICMPv6 match put back in its rule, the mark gone. */
/**
 * iptables-restore-translate copies a comment's escaped quotes through as bare ones
 * (`comment "web, "quoted""`), which nft then refuses; a comment never decides a verdict, so
 * its inner quotes become single ones.
 */
export function quoteComments(translated: string): string {
  return translated.replace(
    /^(add rule .*? comment ")(.*)"$/gm,
    (_all, head: string, inner: string) => `${head}${inner.replaceAll('"', "'")}"`,
  );
}

export function restoreIcmpv6(translated: string, icmpv6: ReadonlyMap<string, string>): string {
  if (icmpv6.size === 0) return translated;
  return translated.replace(
    /^(add rule ip6 \S+ \S+ )(.*?) comment "(ct-analyze-icmpv6-\d+)"$/gm,
    (whole, head: string, body: string, mark: string) => {
      const match = icmpv6.get(mark);
      if (match === undefined) return whole;
      return `${head}${match} ${body.replace(/^meta l4proto (?:ipv6-icmp|58) /, '')}`;
    },
  );
}

/** Every `-A` rule of the file, with its table, chain and line (`fileLine` maps added lines away). */
export function savedRules(text: string, fileLine = (line: number) => line): SavedRule[] {
  const rules: SavedRule[] = [];
  let table = '';
  text.split('\n').forEach((l, i) => {
    const t = /^\*(\S+)/.exec(l);
    if (t) table = t[1] ?? '';
    const a = /^-A\s+(\S+)/.exec(l);
    if (a) rules.push({ table, chain: a[1] ?? '', line: fileLine(i + 1), text: l });
  });
  return rules;
}

const normal = (s: string) => s.replace(/"/g, '').replace(/\s+/g, ' ').trim();

/**
 * The rules the translator printed as `# -t TABLE -A …` comments (it could not translate
 * them), found among `rules` in order; undefined when a comment matches no rule, so the caller
 * does not guess.
 */
export function untranslatedRules(
  translated: string,
  rules: readonly SavedRule[],
): SavedRule[] | undefined {
  const found: SavedRule[] = [];
  let from = 0;
  for (const m of translated.matchAll(/^# -t (\S+) (-A .*)$/gm)) {
    const table = m[1] ?? '';
    const want = normal(m[2] ?? '');
    let at = from;
    while (at < rules.length) {
      const r = rules[at] as SavedRule;
      if (r.table === table && normal(r.text) === want) break;
      at += 1;
    }
    if (at === rules.length) return undefined;
    found.push(rules[at] as SavedRule);
    from = at + 1;
  }
  return found;
}

type RuleBody = Readonly<Record<string, unknown>>;
const ruleOf = (o: NftObject): RuleBody | undefined =>
  'rule' in o ? (o.rule as RuleBody) : undefined;
const chainKey = (table: unknown, chain: unknown) => `${String(table)}\u0000${String(chain)}`;

/**
 * The translated ruleset with each untranslated rule put back at its place in its chain, taken
 * from the ruleset iptables-nft-restore made of the same file (where it is an `xt` match).
 * Undefined when the two do not line up rule for rule with the file, so the caller falls back
 * to iptables-nft-restore's ruleset whole.
 */
export function spliceUntranslated(
  translated: NftJson,
  restored: NftJson,
  rules: readonly SavedRule[],
  untranslated: readonly SavedRule[],
): NftJson | undefined {
  const wanted = new Set(untranslated);
  const keys = new Set(untranslated.map((r) => chainKey(r.table, r.chain)));
  const byChain = (json: NftJson) => {
    const map = new Map<string, NftObject[]>();
    for (const o of json.nftables) {
      const r = ruleOf(o);
      if (r === undefined) continue;
      const key = chainKey(r.table, r.chain);
      if (!keys.has(key)) continue;
      map.set(key, [...(map.get(key) ?? []), o]);
    }
    return map;
  };
  const ours = byChain(translated);
  const theirs = byChain(restored);
  const merged = new Map<string, NftObject[]>();
  for (const key of keys) {
    const file = rules.filter((r) => chainKey(r.table, r.chain) === key);
    const native = ours.get(key) ?? [];
    const xt = theirs.get(key) ?? [];
    if (xt.length !== file.length || native.length !== file.length - countIn(file, wanted)) {
      return undefined;
    }
    let n = 0;
    merged.set(
      key,
      file.map((r, i) => {
        if (!wanted.has(r)) return native[n++] as NftObject;
        // Its handle is from the other namespace: dropped rather than clash with a native one.
        const { handle: _handle, ...rest } = ruleOf(xt[i] as NftObject) as RuleBody;
        return { rule: rest };
      }),
    );
  }
  const out: NftObject[] = [];
  const placed = new Set<string>();
  for (const o of translated.nftables) {
    const r = ruleOf(o);
    const key = r === undefined ? '' : chainKey(r.table, r.chain);
    if (r === undefined || !merged.has(key)) {
      out.push(o);
    } else if (!placed.has(key)) {
      placed.add(key);
      out.push(...(merged.get(key) ?? []));
    }
  }
  // A chain none of whose rules translated: its rules after everything else.
  for (const [key, list] of merged) if (!placed.has(key)) out.push(...list);
  return { nftables: out };
}

function countIn(rules: readonly SavedRule[], set: ReadonlySet<SavedRule>): number {
  return rules.filter((r) => set.has(r)).length;
}
