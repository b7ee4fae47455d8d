// ct-analyze check: the report (text and JSON) of which recorded flows a ruleset blocks, breaks or leaves undetermined, and which rules no flow hit.
import { paint } from '../../common/color.js';
import { printable } from '../../common/printable.js';
import { timeRangeText } from '../core/coverage.js';
import { type Collapse, formatCollapse } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { flowJson } from '../report/json.js';
import { chunked, flowText } from '../report/text.js';
import type { LoadedVia, RulesetFormat } from './load.js';
import { type Block, type Chain, chainName, type Fate, type Rule, type Ruleset } from './model.js';
import type { CheckResult, Finding } from './verdicts.js';

export const CHECK_FORMAT = 'conntracker-check';
/** 2: whole connections (breaks, packet), undecidable constructs, rules by position. */
export const CHECK_VERSION = 2;

export interface CheckReport {
  rulesetPath: string;
  ruleset: Ruleset;
  /** What the file was and how nft read it; what the kernel here would not load. */
  loaded: {
    format: RulesetFormat;
    via: LoadedVia;
    notLoaded: readonly string[];
    /** iptables-save rules without an nft translation, read as iptables-nft loads them. */
    xtRules?: readonly string[];
  };
  /** What compiling assumed or left undecided (limits, reverse-path checks, xt matches…). */
  notes: readonly string[];
  journals: readonly JournalSummary[];
  collapse: Collapse;
  result: CheckResult;
}

/** `inet filter input rule 12: ip saddr 10.0.0.0/8 drop` */
export function ruleRef(chain: Chain, rule: Rule): string {
  return `${chainName(chain)} rule ${rule.index}: ${rule.text}`;
}

/** The rule or policy that refused: `… rule 12: tcp dport 22 drop` or `policy drop of …`. */
export function blockText(b: Block): string {
  return b.rule === undefined ? `policy drop of ${chainName(b.chain)}` : ruleRef(b.chain, b.rule);
}

const FORMAT_NAMES: Record<RulesetFormat, string> = {
  'nft-json': 'nft JSON',
  nft: 'nft',
  iptables: 'iptables-save',
  ip6tables: 'ip6tables-save',
};

const VIA_NAMES: Record<LoadedVia, string> = {
  json: 'read as is',
  nft: 'loaded by nft',
  'iptables-restore-translate': 'translated by iptables-restore-translate',
  'iptables-nft-restore': 'loaded by iptables-nft-restore',
};

const PACKET_NAMES = { first: 'first packet', reply: 'reply', later: 'later packet' } as const;

function findingLines(f: Finding): string[] {
  const fate = f.fate;
  const head = `${fate.kind} ${flowText(f.flow)}`;
  switch (fate.kind) {
    case 'blocked':
      return [head, `    first packet on ${fate.hook}: ${blockText(fate.by)}`];
    case 'breaks':
      return [
        head,
        `    breaks after the first packet: the ${PACKET_NAMES[fate.packet]} on ${fate.hook} meets ${blockText(fate.by)}`,
      ];
    case 'undetermined': {
      const some = fate.by === undefined ? '' : `; some answers meet ${blockText(fate.by)}`;
      return [
        head,
        `    ${PACKET_NAMES[fate.packet]} on ${fate.hook}: undetermined at ${ruleRef(fate.chain, fate.rule)} (${fate.match})${some}`,
      ];
    }
  }
}

function countsLine(r: CheckResult): string {
  const breaks = `${r.breaks.length} ${r.breaks.length === 1 ? 'breaks' : 'break'} after the first packet`;
  return `${r.flows} flows: ${r.accepted} accepted, ${r.blocked.length} blocked, ${breaks}, ${r.undetermined.length} undetermined; ${r.dead.length} rules no flow hit${r.unrecorded.length > 0 ? ` (and ${r.unrecorded.length} not judged)` : ''}`;
}

function* textLines(c: CheckReport): Generator<string> {
  const { ruleset, result: r } = c;
  const rules = ruleset.chains.reduce((n, ch) => n + ch.rules.length, 0);
  const bases = ruleset.chains.filter((ch) => ch.base !== undefined).length;
  const how = `${FORMAT_NAMES[c.loaded.format]}, ${VIA_NAMES[c.loaded.via]}`;
  yield `# check of ${printable(c.rulesetPath)} (${how}: ${bases} base chains, ${rules} rules), collapse ${formatCollapse(c.collapse)}\n`;
  for (const j of c.journals) {
    yield `# journal ${printable(j.path)}: host ${printable(j.host)}, netns ${printable(j.netns)}, ${timeRangeText(j.coverage)}\n`;
    for (const w of j.coverage.warnings) yield `# WARNING: ${printable(j.path)}: ${printable(w)}\n`;
  }
  for (const n of c.loaded.notLoaded) yield `# NOTE: not loaded here: ${printable(n)}\n`;
  for (const x of c.loaded.xtRules ?? []) yield `# NOTE: ${printable(x)}\n`;
  // Whole rulesets of xt matches come from nft's JSON of an iptables-nft host: its
  // iptables-save output translates to nft's own expressions instead.
  const xtHint =
    c.loaded.via === 'json' ? ' (pass the iptables-save output instead: it translates)' : '';
  for (const n of c.notes) yield `# NOTE: ${printable(n)}${n.includes('(xt)') ? xtHint : ''}\n`;
  for (const f of r.unfiltered) {
    yield `# NOTE: the ruleset has no chain for IPv${f}: every IPv${f} flow passes${c.loaded.format === 'iptables' || c.loaded.format === 'ip6tables' ? ` (check the ${f === 4 ? 'iptables-save' : 'ip6tables-save'} output too)` : ''}\n`;
  }
  yield `# ${countsLine(r)}\n`;
  for (const f of r.blocked) for (const l of findingLines(f)) yield `${l}\n`;
  for (const f of r.breaks) for (const l of findingLines(f)) yield `${l}\n`;
  for (const f of r.undetermined) for (const l of findingLines(f)) yield `${l}\n`;
  for (const u of r.undecidable) {
    yield `# undecidable: ${u.match} at ${chainName(u.chain)} rule ${u.rule.index}: ${u.flows === 1 ? '1 flow' : `${u.flows} flows`}\n`;
  }
  for (const d of r.dead) yield `dead ${ruleRef(d.chain, d.rule)}\n`;
  for (const d of r.unrecorded) {
    yield `# not judged: ${ruleRef(d.chain, d.rule)}: ${d.reason}\n`;
  }
}

/** A check line for a terminal: blocked and broken flows red, undetermined and warnings yellow. */
export function colorCheckLine(line: string): string {
  if (line.startsWith('blocked ') || line.startsWith('breaks ')) {
    return paint(true, 'boldRed', line);
  }
  if (line.startsWith('undetermined ') || line.startsWith('# WARNING:')) {
    return paint(true, 'yellow', line);
  }
  return line.startsWith('#') ? paint(true, 'dim', line) : line;
}

/** The text report: `#` lines (ruleset, journals, notes, counts), a line pair per finding, dead rules. */
export function checkTextChunks(c: CheckReport): Generator<string> {
  return chunked(textLines(c));
}

function ruleJson(chain: Chain, rule: Rule | undefined): Record<string, unknown> {
  return {
    family: chain.family,
    table: chain.table,
    chain: chain.name,
    rule: rule?.index ?? null,
    text: rule?.text ?? null,
  };
}

function blockJson(b: Block): Record<string, unknown> {
  return { ...ruleJson(b.chain, b.rule), verdict: b.verdict, policy: b.rule === undefined };
}

function findingJson(f: Finding): Record<string, unknown> {
  const fate: Fate = f.fate;
  const base = { ...flowJson(f.flow), hook: 'hook' in fate ? fate.hook : null };
  switch (fate.kind) {
    case 'blocked':
      return { ...base, packet: 'first', by: blockJson(fate.by) };
    case 'breaks':
      return { ...base, packet: fate.packet, by: blockJson(fate.by) };
    case 'undetermined':
      return {
        ...base,
        packet: fate.packet,
        at: { ...ruleJson(fate.chain, fate.rule), match: fate.match },
        by: fate.by === undefined ? null : blockJson(fate.by),
      };
    default:
      return base;
  }
}

function* jsonLines(c: CheckReport): Generator<string> {
  const r = c.result;
  const head = {
    format: CHECK_FORMAT,
    version: CHECK_VERSION,
    collapse: formatCollapse(c.collapse),
    ruleset: {
      path: c.rulesetPath,
      format: c.loaded.format,
      via: c.loaded.via,
      notLoaded: c.loaded.notLoaded,
      xtRules: c.loaded.xtRules ?? [],
    },
    notes: c.notes,
    unfiltered: r.unfiltered,
    limited: r.limited,
    counts: {
      flows: r.flows,
      accepted: r.accepted,
      blocked: r.blocked.length,
      breaks: r.breaks.length,
      undetermined: r.undetermined.length,
      dead: r.dead.length,
      unrecorded: r.unrecorded.length,
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
  yield* list('breaks', r.breaks.map(findingJson));
  yield* list('undetermined', r.undetermined.map(findingJson));
  yield* list(
    'undecidable',
    r.undecidable.map((u) => ({ ...ruleJson(u.chain, u.rule), match: u.match, flows: u.flows })),
  );
  yield* list(
    'dead',
    r.dead.map((d) => ruleJson(d.chain, d.rule)),
  );
  yield* list(
    'unrecorded',
    r.unrecorded.map((d) => ({ ...ruleJson(d.chain, d.rule), reason: d.reason })),
  );
  yield '}\n';
}

/** The JSON report: one document, a journal, finding, undecidable construct or dead rule per line. */
export function checkJsonChunks(c: CheckReport): Generator<string> {
  return chunked(jsonLines(c));
}
