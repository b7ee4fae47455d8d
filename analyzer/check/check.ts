// ct-analyze check: which recorded flows a ruleset would block, by which rule, and which rules no flow hits.
import { readFileSync } from 'node:fs';
import { paint } from '../../common/color.js';
import { CtError, Exit, sysCode } from '../../common/errors.js';
import { printable } from '../../common/printable.js';
import { timeRangeText } from '../core/coverage.js';
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { flowJson } from '../report/json.js';
import { chunked, flowText } from '../report/text.js';
import { type Block, evalFlow, type Fate } from './eval.js';
import { parseRuleset } from './parse.js';
import { type Chain, chainName, type Rule, type Ruleset } from './ruleset.js';

export const CHECK_FORMAT = 'conntracker-check';
export const CHECK_VERSION = 1;

/** One flow the ruleset refuses, or may refuse depending on its real source port. */
export interface Finding {
  readonly flow: Flow;
  readonly fate: Exclude<Fate, { kind: 'accepted' }>;
}

export interface CheckResult {
  readonly flows: number;
  readonly accepted: number;
  /** In the flow table's order. */
  readonly blocked: readonly Finding[];
  readonly undetermined: readonly Finding[];
  /** Rules no recorded flow matched (nor may have matched), in file order. */
  readonly dead: readonly { chain: Chain; rule: Rule }[];
  /** The ruleset matches source ports and the flow table collapsed them. */
  readonly sportCollapsed: boolean;
  /** Families with recorded flows that no chain of the ruleset sees (they all pass). */
  readonly unfiltered: readonly (4 | 6)[];
}

/** Evaluates every flow against the ruleset (pure: no files). */
export function checkFlows(
  ruleset: Ruleset,
  flows: Iterable<Flow>,
  collapse: Collapse,
): CheckResult {
  const hit = new Set<Rule>();
  const blocked: Finding[] = [];
  const undetermined: Finding[] = [];
  let count = 0;
  let accepted = 0;
  const families = new Set<4 | 6>();
  for (const flow of flows) {
    count++;
    families.add(flow.family);
    const fate = evalFlow(ruleset, flow, collapse, hit);
    if (fate.kind === 'accepted') accepted++;
    else if (fate.kind === 'blocked') blocked.push({ flow, fate });
    else undetermined.push({ flow, fate });
  }
  const dead = ruleset.chains.flatMap((chain) =>
    chain.rules.filter((r) => !hit.has(r)).map((rule) => ({ chain, rule })),
  );
  const sportRules = ruleset.chains.some((c) =>
    c.rules.some((r) => r.matches.some((m) => m.kind === 'port' && m.field === 'sport')),
  );
  return {
    flows: count,
    accepted,
    blocked,
    undetermined,
    dead,
    sportCollapsed: sportRules && collapse.kind !== 'none',
    unfiltered: [...families]
      .sort()
      .filter(
        (f) =>
          !ruleset.chains.some((c) => c.family === 'inet' || c.family === (f === 4 ? 'ip' : 'ip6')),
      ),
  };
}

/** `inet filter input line 12: ip saddr 10.0.0.0/8 drop` */
export function ruleRef(chain: Chain, rule: Rule): string {
  return `${chainName(chain)} line ${rule.line}: ${rule.text}`;
}

/** The rule or policy that refused: `… line 12: tcp dport 22 drop` or `policy drop of …`. */
export function blockText(b: Block): string {
  return b.rule === undefined
    ? `policy drop of ${chainName(b.chain)} (line ${b.chain.line})`
    : ruleRef(b.chain, b.rule);
}

function findingLines(f: Finding): string[] {
  const head = `${f.fate.kind === 'blocked' ? 'blocked' : 'undetermined'} ${flowText(f.flow)}`;
  if (f.fate.kind === 'blocked') return [head, `    ${f.fate.hook}: ${blockText(f.fate.by)}`];
  const on = f.fate.on.map((r) => `line ${r.line}: ${r.text}`).join('; ');
  return [
    head,
    `    ${f.fate.hook}: depends on the real source port (${on}); some ports meet ${blockText(f.fate.by)}`,
  ];
}

export interface CheckReport {
  rulesetPath: string;
  ruleset: Ruleset;
  journals: readonly JournalSummary[];
  collapse: Collapse;
  result: CheckResult;
}

function countsLine(r: CheckResult): string {
  return `${r.flows} flows: ${r.accepted} accepted, ${r.blocked.length} blocked, ${r.undetermined.length} undetermined; ${r.dead.length} rules no flow hit`;
}

function* textLines(c: CheckReport): Generator<string> {
  const rules = c.ruleset.chains.reduce((n, ch) => n + ch.rules.length, 0);
  const bases = c.ruleset.chains.filter((ch) => ch.base !== undefined).length;
  yield `# check of ${printable(c.rulesetPath)} (${c.ruleset.format}: ${bases} base chains, ${rules} rules), collapse ${formatCollapse(c.collapse)}\n`;
  for (const j of c.journals) {
    yield `# journal ${printable(j.path)}: host ${printable(j.host)}, netns ${printable(j.netns)}, ${timeRangeText(j.coverage)}\n`;
    for (const w of j.coverage.warnings) yield `# WARNING: ${printable(j.path)}: ${printable(w)}\n`;
  }
  if (c.result.sportCollapsed) {
    yield `# NOTE: the ruleset matches source ports, which --collapse ${formatCollapse(c.collapse)} keeps only as a range: where the answer depends on the real port the flow is undetermined; --collapse none decides them\n`;
  }
  for (const f of c.result.unfiltered) {
    yield `# NOTE: the ruleset has no chain for IPv${f}: every IPv${f} flow passes${c.ruleset.format === 'iptables' ? ` (check the ${f === 4 ? 'iptables-save' : 'ip6tables-save'} output too)` : ''}\n`;
  }
  yield `# ${countsLine(c.result)}\n`;
  for (const f of c.result.blocked) for (const l of findingLines(f)) yield `${l}\n`;
  for (const f of c.result.undetermined) for (const l of findingLines(f)) yield `${l}\n`;
  for (const d of c.result.dead) yield `dead ${ruleRef(d.chain, d.rule)}\n`;
}

/** A check line for a terminal: blocked flows red, undetermined and warnings yellow. */
export function colorCheckLine(line: string): string {
  if (line.startsWith('blocked ')) return paint(true, 'boldRed', line);
  if (line.startsWith('undetermined ') || line.startsWith('# WARNING:')) {
    return paint(true, 'yellow', line);
  }
  return line.startsWith('#') ? paint(true, 'dim', line) : line;
}

/** The text report: `#` lines (ruleset, journals, counts), a line pair per finding, dead rules. */
export function checkTextChunks(c: CheckReport): Generator<string> {
  return chunked(textLines(c));
}

function ruleJson(chain: Chain, rule: Rule | undefined): Record<string, unknown> {
  return {
    family: chain.family,
    table: chain.table,
    chain: chain.name,
    line: rule?.line ?? chain.line,
    rule: rule?.text ?? null,
  };
}

function findingJson(f: Finding): Record<string, unknown> {
  const by = { ...ruleJson(f.fate.by.chain, f.fate.by.rule), verdict: f.fate.by.verdict };
  const on =
    f.fate.kind === 'unknown' ? { on: f.fate.on.map((r) => ({ line: r.line, rule: r.text })) } : {};
  return {
    ...flowJson(f.flow),
    hook: f.fate.hook,
    by: { ...by, policy: f.fate.by.rule === undefined },
    ...on,
  };
}

function* jsonLines(c: CheckReport): Generator<string> {
  const r = c.result;
  const head = {
    format: CHECK_FORMAT,
    version: CHECK_VERSION,
    collapse: formatCollapse(c.collapse),
    ruleset: { path: c.rulesetPath, format: c.ruleset.format },
    sportCollapsed: r.sportCollapsed,
    unfiltered: r.unfiltered,
    counts: {
      flows: r.flows,
      accepted: r.accepted,
      blocked: r.blocked.length,
      undetermined: r.undetermined.length,
      dead: r.dead.length,
    },
  };
  yield JSON.stringify(head).slice(0, -1);
  const list = function* (name: string, items: Iterable<unknown>) {
    yield `,\n"${name}":[`;
    let sep = '\n';
    for (const item of items) {
      yield `${sep}${JSON.stringify(item)}`;
      sep = ',\n';
    }
    yield ']';
  };
  yield* list('journals', c.journals);
  yield* list('blocked', r.blocked.map(findingJson));
  yield* list('undetermined', r.undetermined.map(findingJson));
  yield* list(
    'dead',
    r.dead.map((d) => ruleJson(d.chain, d.rule)),
  );
  yield '}\n';
}

/** The JSON report: one document, a journal, finding or dead rule per line. */
export function checkJsonChunks(c: CheckReport): Generator<string> {
  return chunked(jsonLines(c));
}

/** Reads and parses the ruleset file (before any journal: a bad ruleset fails fast). */
export function readRuleset(path: string): Ruleset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CtError(
      'ERULESET',
      `cannot read ruleset ${path}: ${sysCode(err) ?? String(err)}: give an nft -f file or iptables-save output`,
      { exit: Exit.RUNTIME, cause: err },
    );
  }
  try {
    return parseRuleset(text);
  } catch (err) {
    if (err instanceof CtError) {
      throw new CtError(err.code, `${path}: ${err.message}`, { exit: err.exit });
    }
    throw err;
  }
}
