// ct-analyze check: anonymous chains (`jump { … }`), which nft 1.0.6 lists as nft text, made into named chains by nft itself and jumped to.
import type { NftJson, NftObject } from './nft-json.js';

/** Names this analyzer gives the chains it makes; a ruleset's own chain never starts so. */
export const ANON_PREFIX = 'ct-analyze-anon-';

/** One string expression of a rule: a chain binding as nft printed it. */
export interface Binding {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly handle: number | undefined;
  /** Its place in the rule's `expr`. */
  readonly index: number;
  readonly text: string;
  readonly kind: 'jump' | 'goto';
  /** The lines between the braces, as nft printed them; undefined when the text is not `jump { … }`. */
  readonly body: string | undefined;
  /** The regular chain made for it, in the same table. */
  readonly name: string;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where a binding is, the same in every listing of the same load: table, chain, rule handle, place. */
export const bindingKey = (b: Pick<Binding, 'family' | 'table' | 'chain' | 'handle' | 'index'>) =>
  `${b.family}\0${b.table}\0${b.chain}\0${b.handle ?? ''}\0${b.index}`;

/**
 * The body between the outer braces: nft prints a binding as `jump {` NEWLINE rules `}`, each
 * rule as it would list it. Only the keyword and the braces are taken off; nft reads the rest.
 */
export function bindingBody(text: string): { kind: 'jump' | 'goto'; body: string } | undefined {
  const m = /^\s*(jump|goto)\s*\{([\s\S]*)\}\s*$/.exec(text);
  if (m === null) return undefined;
  return { kind: m[1] as 'jump' | 'goto', body: m[2] as string };
}

/** Every string expression of every rule of `json`, each with the chain name it gets. */
export function findBindings(json: NftJson): Binding[] {
  const found: Binding[] = [];
  const names = new Set<string>();
  for (const o of json.nftables) {
    if (isObj(o.chain)) names.add(`${o.chain.family}\0${o.chain.table}\0${o.chain.name}`);
  }
  let ordinal = 0;
  for (const o of json.nftables) {
    const r = o.rule;
    if (!isObj(r) || !Array.isArray(r.expr)) continue;
    const handle = typeof r.handle === 'number' ? r.handle : undefined;
    r.expr.forEach((e: unknown, index: number) => {
      if (typeof e !== 'string') return;
      ordinal += 1;
      const family = String(r.family);
      const table = String(r.table);
      // Rule handles are unique in a table (the kernel numbers rules and chains per table);
      // a hand-made JSON without handles gets an ordinal.
      let name = `${ANON_PREFIX}${handle ?? `n${ordinal}`}-${index}`;
      while (names.has(`${family}\0${table}\0${name}`)) name += '-';
      names.add(`${family}\0${table}\0${name}`);
      const parsed = bindingBody(e);
      found.push({
        family,
        table,
        chain: String(r.chain),
        handle,
        index,
        text: e,
        kind: parsed?.kind ?? 'jump',
        body: parsed?.body,
        name,
      });
    });
  }
  return found;
}

/**
 * The nft file that makes `b`'s body a regular chain of its table. The table block adds to the
 * table the ruleset made, so the body's named sets (`@s`) resolve; the body keeps its own lines.
 */
export function bindingFile(b: Binding): string | undefined {
  if (bindingFault(b) !== undefined) return undefined;
  return `table ${b.family} ${b.table} {\n\tchain ${b.name} {\n${b.body}\n\t}\n}\n`;
}

/** Why `b` is not given to nft, or undefined. */
export function bindingFault(b: Binding): string | undefined {
  if (b.body === undefined) return 'its text is not `jump { … }` or `goto { … }`';
  // nft reads a table or chain name only unquoted (measured, 1.0.6): as `nft list ruleset` prints it.
  if (!/^[A-Za-z0-9_./-]+$/.test(b.table) || !/^[a-z0-9]+$/.test(b.family)) {
    return 'its table name cannot be written unquoted';
  }
  // nft never lists an include: one in a JSON file's binding was written there, and would
  // have nft read a file of the user's (docs/security.md), so it is not given to nft.
  if (/(^|[\s;{}])include\s/.test(b.body)) return 'it holds an include, which nft never lists';
  return undefined;
}

/**
 * All of the bodies as one nft file, one block per table: nft reads a block per chain some
 * fifty times slower (2.2 s for 400, measured, 1.0.6; it refreshes its cache per table block).
 */
export function bindingsTogether(bindings: readonly Binding[]): string {
  const tables = new Map<string, string[]>();
  for (const b of bindings) {
    const text = bindingFile(b);
    if (text === undefined) continue;
    const head = `table ${b.family} ${b.table} {\n`;
    const chains = tables.get(head) ?? [];
    // The block without its table lines: `\tchain NAME {` … `\t}`.
    chains.push(text.slice(head.length, -'}\n'.length));
    tables.set(head, chains);
  }
  return [...tables].map(([head, chains]) => `${head}${chains.join('')}}\n`).join('');
}

/** The chains present in a listing, by family, table and name. */
export function chainsOf(json: NftJson): Set<string> {
  const chains = new Set<string>();
  for (const o of json.nftables) {
    if (isObj(o.chain)) chains.add(`${o.chain.family}\0${o.chain.table}\0${o.chain.name}`);
  }
  return chains;
}

/**
 * `json` with each binding whose chain it lists replaced by a jump (or goto) to that chain;
 * the others stay text, which the evaluator leaves undetermined. Rules are copied, not changed.
 */
export function substituteBindings(json: NftJson, bindings: readonly Binding[]): NftJson {
  const chains = chainsOf(json);
  const byKey = new Map<string, Binding>();
  for (const b of bindings) {
    if (chains.has(`${b.family}\0${b.table}\0${b.name}`)) byKey.set(bindingKey(b), b);
  }
  if (byKey.size === 0) return json;
  const nftables = json.nftables.map((o): NftObject => {
    const r = o.rule;
    if (!isObj(r) || !Array.isArray(r.expr) || !r.expr.some((e) => typeof e === 'string')) return o;
    const handle = typeof r.handle === 'number' ? r.handle : undefined;
    const where = { family: String(r.family), table: String(r.table), chain: String(r.chain) };
    const expr = r.expr.map((e: unknown, index: number) => {
      const b =
        typeof e === 'string' ? byKey.get(bindingKey({ ...where, handle, index })) : undefined;
      return b !== undefined && b.text === e ? { [b.kind]: { target: b.name } } : e;
    });
    return { ...o, rule: { ...r, expr } };
  });
  return { ...json, nftables };
}

/** Rounds of namespace runs: a binding inside a binding comes back as text once more per level. */
export const MAX_ANON_ROUNDS = 3;

/**
 * A rerun of the same load in a fresh namespace, with these files (name → nft text) loaded
 * after it: `all` at once, else (nft refused it) each `*.nft` alone.
 */
export type Rerun = (
  files: ReadonlyMap<string, string>,
) => Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>;

export interface Resolved {
  readonly json: NftJson;
  /** One line per binding left as text, saying why. */
  readonly notLoaded: readonly string[];
  readonly runs: number;
}

/**
 * Each binding of `first` made a regular chain by nft (one rerun for all of them, one more per
 * level of nesting, at most MAX_ANON_ROUNDS) and jumped to; what nft refuses stays text.
 */
export async function resolveBindings(
  first: NftJson,
  rerun: Rerun,
  parse: (stdout: string) => NftJson,
): Promise<Resolved> {
  const planned = new Map<string, Binding>();
  const fileOf = new Map<string, Binding>();
  let json = first;
  let stderr = '';
  let failed: string | undefined;
  let runs = 0;
  for (let round = 0; round < MAX_ANON_ROUNDS; round++) {
    const fresh = findBindings(json).filter((b) => !planned.has(bindingKey(b)));
    if (fresh.length === 0) break;
    for (const b of fresh) planned.set(bindingKey(b), b);
    const files = new Map<string, string>();
    for (const b of planned.values()) {
      const text = bindingFile(b);
      if (text === undefined) continue;
      // Name order is load order: earlier rounds' chains before the ones nested in them.
      const name = `${String(files.size).padStart(5, '0')}.nft`;
      files.set(name, text);
      fileOf.set(name, b);
    }
    if (files.size === 0) break;
    files.set('all', bindingsTogether([...planned.values()]));
    const result = await rerun(files);
    runs += 1;
    if (result.code !== 0) {
      failed = result.stderr.split('\n').find((l) => l.trim() !== '') ?? `exit ${result.code}`;
      break;
    }
    json = parse(result.stdout);
    stderr = result.stderr;
  }
  const resolved = substituteBindings(json, [...planned.values()]);
  const notLoaded = findBindings(resolved).map((b) => {
    const at = `${b.family} ${b.table} chain ${b.chain}${b.handle === undefined ? '' : ` rule handle ${b.handle}`}`;
    const p = planned.get(bindingKey(b));
    let why: string;
    if (p === undefined) why = `nested over ${MAX_ANON_ROUNDS} levels deep`;
    else if (bindingFault(p) !== undefined) why = bindingFault(p) as string;
    else if (failed !== undefined) why = `the namespace run that makes it failed: ${failed.trim()}`;
    else
      why = `nft did not load its body as a chain: ${refusal(stderr, fileOf, p) || 'no reason given'}`;
    return `anonymous chain (${b.kind} { … }) in ${at} left as text, its flows undetermined: ${why}`;
  });
  return { json: resolved, notLoaded, runs };
}

/** nft's first error about the file made for `b`, with the line of the body it quotes. */
function refusal(stderr: string, fileOf: ReadonlyMap<string, Binding>, b: Binding): string {
  const lines = stderr.split('\n');
  for (const [file, made] of fileOf) {
    if (made !== b) continue;
    const i = lines.findIndex((l) => l.includes(`${file}:`) && l.includes('Error:'));
    if (i < 0) continue;
    const line = lines[i] as string;
    const quoted = lines[i + 1]?.trim();
    return `${line.slice(line.indexOf('Error:')).trim()}${quoted ? ` (at: ${quoted})` : ''}`;
  }
  return '';
}

/** Kinds a body may name (`@set`, `counter name c`, `jump other`), declared for nft to resolve them. */
const SKELETON_KINDS = new Set(['table', 'chain', 'set', 'map', 'counter', 'quota', 'limit']);

/**
 * For JSON input: what a body can refer to, as nft's JSON input (`nft -j -f`) takes it — each
 * table, each chain as a regular one (no hook, no device to create), sets and maps without
 * their elements, named counters, quotas, limits. Rules stay out: nft cannot read a listed
 * binding back, nor an xt match.
 */
export function bindingSkeleton(json: NftJson): NftJson {
  const nftables: NftObject[] = [];
  for (const o of json.nftables) {
    const kind = Object.keys(o)[0] ?? '';
    const v = o[kind];
    if (!SKELETON_KINDS.has(kind) || !isObj(v)) continue;
    if (kind === 'chain') {
      nftables.push({ chain: { family: v.family, table: v.table, name: v.name } });
    } else if (kind === 'set' || kind === 'map') {
      const { elem: _elem, handle: _handle, ...rest } = v;
      nftables.push({ [kind]: rest });
    } else {
      const { handle: _handle, ...rest } = v;
      nftables.push({ [kind]: rest });
    }
  }
  return { nftables };
}

/**
 * For JSON input: `input` with the chains nft made from its bindings (and their rules) taken
 * from `listing`, the namespace's listing of the skeleton and the bodies.
 */
export function graftBindings(input: NftJson, listing: NftJson): NftJson {
  const have = chainsOf(input);
  const made = (family: unknown, table: unknown, name: unknown) =>
    typeof name === 'string' &&
    name.startsWith(ANON_PREFIX) &&
    !have.has(`${family}\0${table}\0${name}`);
  const chains: NftObject[] = [];
  const rules: NftObject[] = [];
  for (const o of listing.nftables) {
    if (isObj(o.chain) && made(o.chain.family, o.chain.table, o.chain.name)) chains.push(o);
    if (isObj(o.rule) && made(o.rule.family, o.rule.table, o.rule.chain)) rules.push(o);
  }
  return { ...input, nftables: [...input.nftables, ...chains, ...rules] };
}
