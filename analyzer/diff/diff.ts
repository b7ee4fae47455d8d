// ct-analyze diff: the flows that appeared, disappeared or changed confirmation between recordings.
import { paint } from '../../common/color.js';
import { printable } from '../../common/printable.js';
import { timeRangeText } from '../core/coverage.js';
import { type Collapse, compareFlows, type Flow, formatCollapse } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { flowJson } from '../report/json.js';
import { chunked, formatFlowLine } from '../report/text.js';

export const DIFF_FORMAT = 'conntracker-diff';
export const DIFF_VERSION = 1;

/** appeared: in AFTER only; disappeared: in BEFORE only; changed: in both, confirmation differs. */
export type ChangeKind = 'appeared' | 'disappeared' | 'changed';

export interface Change {
  kind: ChangeKind;
  /** The flow as AFTER has it (BEFORE's for a disappeared one); a changed flow was !confirmed. */
  flow: Flow;
}

export interface DiffCounts {
  appeared: number;
  disappeared: number;
  changed: number;
  unchanged: number;
}

export interface FlowDiff {
  /** The differences in sort order. */
  changes: Change[];
  counts: DiffCounts;
}

/** The next flow of a sorted list; throws if the list is not strictly in compareFlows order. */
function sortedReader(flows: Iterable<Flow>): () => Flow | undefined {
  const it = flows[Symbol.iterator]();
  let last: Flow | undefined;
  return () => {
    const next = it.next();
    if (next.done === true) return undefined;
    // A merge walk over unsorted input would report wrong differences without a sign.
    if (last !== undefined && compareFlows(last, next.value) >= 0) {
      throw new Error('diff: flows are not in sort order');
    }
    last = next.value;
    return last;
  };
}

/** Compares two flow lists, each in the table's sort order (FlowTable.flows()), in one walk. */
export function diffFlows(before: Iterable<Flow>, after: Iterable<Flow>): FlowDiff {
  const counts: DiffCounts = { appeared: 0, disappeared: 0, changed: 0, unchanged: 0 };
  const changes: Change[] = [];
  const nextBefore = sortedReader(before);
  const nextAfter = sortedReader(after);
  let b = nextBefore();
  let a = nextAfter();
  while (b !== undefined || a !== undefined) {
    const order = b === undefined ? 1 : a === undefined ? -1 : compareFlows(b, a);
    if (order < 0 && b !== undefined) {
      changes.push({ kind: 'disappeared', flow: b });
      counts.disappeared++;
      b = nextBefore();
    } else if (order > 0 && a !== undefined) {
      changes.push({ kind: 'appeared', flow: a });
      counts.appeared++;
      a = nextAfter();
    } else if (a !== undefined && b !== undefined) {
      if (a.confirmed !== b.confirmed) {
        changes.push({ kind: 'changed', flow: a });
        counts.changed++;
      } else {
        counts.unchanged++;
      }
      b = nextBefore();
      a = nextAfter();
    }
  }
  return { changes, counts };
}

/** What a diff report is made of: both sides' journals, the collapsing mode, the differences. */
export interface DiffReport {
  before: readonly JournalSummary[];
  after: readonly JournalSummary[];
  collapse: Collapse;
  diff: FlowDiff;
}

/** `3 appeared, 1 disappeared, 2 changed, 40 unchanged` */
export function countsLine(c: DiffCounts): string {
  return `${c.appeared} appeared, ${c.disappeared} disappeared, ${c.changed} changed, ${c.unchanged} unchanged`;
}

/** Width of ` [           0]`, the counter formatFlowLine puts after the table name. */
const COUNTER_CHARS = 15;

/** The text report's flow line without its counter: `+ `/`- `/`~ ` lines have no position. */
function flowText(flow: Flow): string {
  const line = formatFlowLine(flow, 0);
  return line.slice(0, 6) + line.slice(6 + COUNTER_CHARS);
}

/** One difference as a line without its newline. */
export function changeLine(c: Change): string {
  if (c.kind === 'appeared') return `+ ${flowText(c.flow)}`;
  if (c.kind === 'disappeared') return `- ${flowText(c.flow)}`;
  const was = c.flow.confirmed ? 'unconfirmed → confirmed' : 'confirmed → unconfirmed';
  return `~ ${flowText({ ...c.flow, confirmed: false })} (${was})`;
}

function journalLines(side: string, journals: readonly JournalSummary[]): string[] {
  return journals.flatMap((j) => [
    `# ${side}: ${printable(j.path)}: host ${printable(j.host)}, netns ${printable(j.netns)}, ${timeRangeText(j.coverage)}`,
    // A flow lost to a gap shows as disappeared or appeared: the warning must sit beside it.
    ...j.coverage.warnings.map((w) => `# WARNING: ${printable(j.path)}: ${printable(w)}`),
  ]);
}

function* textLines(r: DiffReport): Generator<string> {
  for (const line of journalLines('before', r.before)) yield `${line}\n`;
  for (const line of journalLines('after', r.after)) yield `${line}\n`;
  yield `# ${countsLine(r.diff.counts)}\n`;
  for (const c of r.diff.changes) yield `${changeLine(c)}\n`;
}

/** The text report in chunks: `#` lines naming both sides and the counts, then a line per change. */
export function diffTextChunks(r: DiffReport): Generator<string> {
  return chunked(textLines(r));
}

function* jsonLines(r: DiffReport): Generator<string> {
  const head = { format: DIFF_FORMAT, version: DIFF_VERSION, collapse: formatCollapse(r.collapse) };
  yield JSON.stringify(head).slice(0, -1);
  for (const side of ['before', 'after'] as const) {
    yield `,\n"${side}":[`;
    let sep = '\n';
    for (const j of r[side]) {
      yield `${sep}${JSON.stringify(j)}`;
      sep = ',\n';
    }
    yield ']';
  }
  yield `,\n"counts":${JSON.stringify(r.diff.counts)}`;
  for (const kind of ['appeared', 'disappeared', 'changed'] as const) {
    yield `,\n"${kind}":[`;
    let sep = '\n';
    for (const c of r.diff.changes) {
      if (c.kind !== kind) continue;
      const json =
        kind === 'changed'
          ? { ...flowJson(c.flow), before: { confirmed: !c.flow.confirmed } }
          : flowJson(c.flow);
      yield `${sep}${JSON.stringify(json)}`;
      sep = ',\n';
    }
    yield ']';
  }
  yield '}\n';
}

/** A diff line for a terminal: appeared green, disappeared red, changed and warnings yellow. */
export function colorDiffLine(line: string): string {
  if (line.startsWith('+ ')) return paint(true, 'green', line);
  if (line.startsWith('- ')) return paint(true, 'red', line);
  if (line.startsWith('~ ') || line.startsWith('# WARNING:')) return paint(true, 'yellow', line);
  return line.startsWith('#') ? paint(true, 'dim', line) : line;
}

/** The JSON report in chunks: one document, a journal or a flow per line (docs/rules.md). */
export function diffJsonChunks(r: DiffReport): Generator<string> {
  return chunked(jsonLines(r));
}
