// The flow report as one self-contained HTML page: coverage, two pictures, a sortable flow table.
import { createHash } from 'node:crypto';
import { TOOL_VERSION } from '../../common/package.js';
import { combineCoverage, countsText, coverageFacts } from '../core/coverage.js';
import { type Flow, TABLES } from '../core/flows.js';
import type { JournalSummary } from '../core/replay.js';
import { aggregate, escapeHtml, graphSvg, type Pictures, timelineSvg } from './html-graph.js';
import { COLUMNS } from './table.js';
import { chunked } from './text.js';

/**
 * Rows the page displays at once: browsers lay a long table out slowly (about 0.15 ms per row
 * here), so with JavaScript the first SHOWN matching rows are displayed and the filter and
 * sorting choose which; without it every row is.
 */
export const SHOWN = 2000;

const STYLE = `
:root { --c: #2b6cb0; --m: #805ad5; --u: #c05621; --line: #e2e8f0; --ink: #1a202c; --soft: #4a5568;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
body { margin: 0 auto; padding: 1rem 1.5rem 2rem; max-width: 1500px; color: var(--ink); background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: .4rem 0 .2rem; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 0 0 .4rem; overflow-wrap: anywhere; }
.summary { font-size: 1.05rem; margin: 0; color: var(--soft); }
.summary b { color: var(--ink); }
.journals { display: grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap: .8rem; }
.journal { border: 1px solid var(--line); border-radius: 6px; padding: .7rem .9rem; background: #f8fafc; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0; font-size: .9rem; }
.facts dt { color: var(--soft); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.warnings { margin: .6rem 0 0; padding: 0; list-style: none; font-size: .9rem; }
.warnings li { background: #fffaf0; border-left: 4px solid #dd6b20; padding: .3rem .6rem; margin-top: .3rem; overflow-wrap: anywhere; }
.warnings li strong { color: #9c4221; }
.ok { color: #276749; font-size: .9rem; margin: .5rem 0 0; }
.combined { font-size: .9rem; color: var(--soft); }
figure { margin: .5rem 0 1rem; }
figcaption { font-size: .85rem; color: var(--soft); max-width: 60rem; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-size: 12px; fill: #2d3748; }
svg .head { font-weight: 600; }
svg .note, svg .empty { fill: var(--soft); }
.edge { fill: none; stroke-linecap: round; opacity: .55; }
.edge:hover { opacity: 1; }
.edge.c { stroke: var(--c); }
.edge.m { stroke: var(--m); }
.edge.u { stroke: var(--u); stroke-dasharray: 6 4; }
.node rect { fill: #4a5568; }
.node.u rect { fill: var(--u); }
.node.m rect { fill: var(--m); }
.bar-c, .key-c { fill: var(--c); }
.bar-u, .key-u { fill: var(--u); }
.bar:hover rect { opacity: .75; }
.axis { stroke: #a0aec0; }
.grid { stroke: var(--line); stroke-dasharray: 3 3; }
.controls { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; align-items: center; margin: .3rem 0; }
.controls[hidden] { display: none; }
#filter { font: inherit; padding: .3rem .5rem; min-width: 22rem; border: 1px solid #a0aec0; border-radius: 4px; }
#count { font-size: .9rem; color: var(--soft); margin: .3rem 0; }
.table-wrap { overflow: auto; max-height: 85vh; border: 1px solid var(--line); border-radius: 4px; }
table { border-collapse: separate; border-spacing: 0; font-size: .82rem; min-width: 100%; }
th, td { padding: .22rem .55rem; text-align: left; white-space: nowrap; border-bottom: 1px solid var(--line); }
thead th { position: sticky; top: 0; z-index: 1; background: #edf2f7; font-weight: 600; }
.sortable thead th { cursor: pointer; user-select: none; }
.sortable thead th:hover { background: #e2e8f0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #f7fafc; }
tbody tr:hover { background: #ebf4ff; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.a { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
tr[data-c="0"] td.k { color: var(--u); font-weight: 600; }
.js-rows #flow-table tbody tr:nth-child(n+${SHOWN + 1}) { display: none; }
footer { margin-top: 1.5rem; font-size: .8rem; color: var(--soft); }
@media print {
  body { max-width: none; padding: 0; }
  .controls, #count { display: none; }
  .table-wrap { overflow: visible; max-height: none; border: 0; }
  thead th { position: static; }
  tbody tr:nth-child(even), tbody tr:hover { background: none; }
  figure, .journal { break-inside: avoid; }
}
`;

// Runs in <head>, before any row is parsed: until the script below has hidden the rows past
// SHOWN, the style keeps the browser from laying them out.
const EARLY = "document.documentElement.classList.add('js-rows');";

// Plain browser JavaScript; the rows, their text and their sort keys live in the DOM.
const SCRIPT = `
(() => {
  const SHOWN = ${SHOWN};
  const table = document.getElementById('flow-table');
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  let order = rows.map((_, i) => i);
  let texts = null;
  const heads = Array.from(table.tHead.rows[0].cells);
  const filter = document.getElementById('filter');
  const boxes = { 1: document.getElementById('show-c'), 0: document.getElementById('show-u') };
  const count = document.getElementById('count');
  // Rows change inside a detached body: in the page, each change would restyle its siblings.
  const detached = (change) => {
    const next = body.nextSibling;
    body.remove();
    change();
    table.insertBefore(body, next);
  };
  const show = () => {
    const words = filter.value.toLowerCase().split(/\\s+/).filter((w) => w !== '');
    if (texts === null && words.length > 0) {
      texts = rows.map((r) => Array.from(r.cells, (c) => c.textContent).join(' ').toLowerCase());
    }
    let matches = 0;
    for (const i of order) {
      const r = rows[i];
      const match = boxes[r.dataset.c].checked && words.every((w) => texts[i].includes(w));
      if (match) matches++;
      const shown = match && matches <= SHOWN;
      if (r.hidden === shown) r.hidden = !shown;
    }
    const more = matches > SHOWN ? ' (the first ' + SHOWN + ' shown: narrow the filter or sort to see others)' : '';
    count.textContent = matches + ' of ' + rows.length + ' flows' + more;
  };
  const apply = () => detached(show);
  let timer = 0;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(apply, rows.length > 20000 ? 250 : 0);
  });
  boxes[1].addEventListener('change', apply);
  boxes[0].addEventListener('change', apply);
  let sortedBy = -1;
  let dir = 1;
  const keyOf = (cell, num) => {
    const s = cell.dataset.s !== undefined ? cell.dataset.s : cell.textContent;
    return s === '' ? null : num ? Number(s) : s;
  };
  const sortBy = (col) => {
    dir = col === sortedBy ? -dir : 1;
    sortedBy = col;
    const num = heads[col].dataset.type === 'num';
    const keyed = rows.map((r, i) => [keyOf(r.cells[col], num), i]);
    keyed.sort((a, b) => {
      if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null) || a[1] - b[1];
      return (a[0] < b[0] ? -dir : a[0] > b[0] ? dir : 0) || a[1] - b[1];
    });
    order = keyed.map((k) => k[1]);
    detached(() => {
      for (const i of order) body.appendChild(rows[i]);
      show();
    });
    heads.forEach((h, i) => {
      h.setAttribute('aria-sort', i !== col ? 'none' : dir > 0 ? 'ascending' : 'descending');
    });
  };
  heads.forEach((h, i) => {
    h.tabIndex = 0;
    h.addEventListener('click', () => sortBy(i));
    h.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        sortBy(i);
      }
    });
  });
  table.classList.add('sortable');
  document.getElementById('controls').hidden = false;
  apply();
  document.documentElement.classList.remove('js-rows');
})();
`;

const hashOf = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Nothing may be fetched: the style and the script are allowed by their hashes alone. */
export const CONTENT_SECURITY_POLICY = `default-src 'none'; style-src ${hashOf(STYLE)}; script-src ${hashOf(EARLY)} ${hashOf(SCRIPT)}; img-src data:; base-uri 'none'; form-action 'none'`;

/** How the script sorts a column: numbers numerically, the rest by their text or data-s key. */
const NUMERIC = new Set(['sport', 'dport', 'icmp_type', 'icmp_code']);
const CELL_CLASS = new Map([
  ['src', 'a'],
  ['dst', 'a'],
  ['confirmed', 'k'],
  ...[...NUMERIC].map((c): [string, string] => [c, 'n']),
]);

/** Addresses sort by family, then bytes; tables in the report's table order. */
const SORT_KEY = new Map<string, (f: Flow) => string>([
  ['table', (f) => String(TABLES.indexOf(f.table))],
  ['src', (f) => `${f.family}${Buffer.from(f.src).toString('hex')}`],
  ['dst', (f) => `${f.family}${Buffer.from(f.dst).toString('hex')}`],
]);

const CELLS = COLUMNS.map(([name, get]) => {
  const cls = CELL_CLASS.get(name);
  const open = cls === undefined ? '<td' : `<td class="${cls}"`;
  const key = SORT_KEY.get(name);
  return (f: Flow) =>
    `${open}${key === undefined ? '' : ` data-s="${key(f)}"`}>${escapeHtml(get(f))}</td>`;
});

/** One table row: the same columns as CSV and Markdown, every value escaped. */
export function flowRow(f: Flow): string {
  return `<tr data-c="${f.confirmed ? 1 : 0}">${CELLS.map((cell) => cell(f)).join('')}</tr>\n`;
}

/**
 * The HTML report in chunks. `flows` yields the flows in sort order and is called three
 * times: twice for the pictures' counts, then for the rows.
 */
export function htmlChunks(
  journals: readonly JournalSummary[],
  flows: () => Iterable<Flow>,
): Generator<string> {
  return chunked(htmlLines(journals, flows));
}

function* htmlLines(
  journals: readonly JournalSummary[],
  flows: () => Iterable<Flow>,
): Generator<string> {
  const pics = aggregate(flows, timeSpan(journals));
  const hosts = [...new Set(journals.map((j) => j.host))];
  yield `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="conntracker ${escapeHtml(TOOL_VERSION)}">
<link rel="icon" href="data:,">
<title>${escapeHtml(`Flows of ${hosts.length === 0 ? 'no journal' : hosts.join(', ')} (conntracker)`)}</title>
<style>${STYLE}</style>
<script>${EARLY}</script>
</head>
<body>
<header>
<h1>Recorded flows</h1>
${summaryLine(pics, journals.length, hosts)}
</header>
`;
  yield coverageSection(journals);
  yield picturesSection(pics);
  yield `<section id="flows" aria-labelledby="flows-h">
<h2 id="flows-h">Flows</h2>
<div id="controls" class="controls" hidden>
<input type="search" id="filter" placeholder="filter: rows holding every word typed" aria-label="filter rows: every word typed must appear in the row" autocomplete="off">
<label><input type="checkbox" id="show-c" checked> confirmed</label>
<label><input type="checkbox" id="show-u" checked> unconfirmed</label>
<span>click a column heading to sort</span>
</div>
<p id="count" role="status">${pics.flows} of ${pics.flows} flows</p>
<div class="table-wrap">
<table id="flow-table">
<thead><tr>${COLUMNS.map(([name]) => `<th scope="col"${NUMERIC.has(name) ? ' data-type="num"' : ''}>${name.replace(/_/g, ' ')}</th>`).join('')}</tr></thead>
<tbody>
`;
  for (const f of flows()) yield flowRow(f);
  yield `</tbody>
</table>
</div>
</section>
<footer>Written by conntracker ${escapeHtml(TOOL_VERSION)} (ct-analyze --format html). Columns and rules: docs/rules.md.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function summaryLine(pics: Pictures, journals: number, hosts: readonly string[]): string {
  const unconfirmed = pics.flows - pics.confirmed;
  const from = `${journals} journal${journals === 1 ? '' : 's'}`;
  const names =
    hosts.length === 0 ? '' : ` (host${hosts.length === 1 ? '' : 's'} ${hosts.join(', ')})`;
  return `<p class="summary"><b>${pics.flows}</b> flow${pics.flows === 1 ? '' : 's'}: <b>${pics.confirmed}</b> confirmed, <b>${unconfirmed}</b> unconfirmed; from ${escapeHtml(`${from}${names}`)}</p>`;
}

/** Per journal its coverage facts and warnings; for several, the combined counts. */
function coverageSection(journals: readonly JournalSummary[]): string {
  const out = [
    '<section id="coverage" aria-labelledby="coverage-h">',
    '<h2 id="coverage-h">Coverage</h2>',
  ];
  out.push('<div class="journals">');
  for (const j of journals) {
    const [first, ...rest] = coverageFacts(j);
    out.push(
      `<article class="journal"><h3>${escapeHtml(first?.text ?? j.path)}</h3>`,
      '<dl class="facts">',
    );
    for (const f of rest) out.push(`<dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.text)}</dd>`);
    out.push('</dl>');
    const warnings = j.coverage.warnings;
    if (warnings.length === 0) out.push('<p class="ok">no warnings</p>');
    else {
      out.push('<ul class="warnings">');
      for (const w of warnings) out.push(`<li><strong>Warning:</strong> ${escapeHtml(w)}</li>`);
      out.push('</ul>');
    }
    out.push('</article>');
  }
  out.push('</div>');
  if (journals.length > 1) {
    const all = combineCoverage(journals.map((j) => j.coverage));
    out.push(
      `<p class="combined">All ${journals.length} journals: ${escapeHtml(countsText(all))}</p>`,
    );
  }
  out.push('</section>', '');
  return out.join('\n');
}

function picturesSection(pics: Pictures): string {
  const { left, right } = pics.graph;
  const gathered = [...left, ...right].filter((n) => n.others > 0).map((n) => n.label);
  const kept =
    gathered.length === 0
      ? ''
      : ` Only the nodes with most flows are drawn; the rest are gathered (${escapeHtml(gathered.join(', '))}).`;
  return `<section id="pictures" aria-labelledby="pictures-h">
<h2 id="pictures-h">Who talks to what</h2>
<figure>
${graphSvg(pics.graph)}
<figcaption>Flows from source subnets (IPv4 /24, IPv6 /64, loopback) to services (protocol, destination as the firewall's filter sees it, i.e. after DNAT, and port or ICMP type). Confirmed: a reply was seen.${kept}</figcaption>
</figure>
<h2>When flows started</h2>
<figure>
${timelineSvg(pics.timeline)}
<figcaption>New flows per ${escapeHtml(pics.timeline?.bucket.label ?? 'minute')} by the time each was first seen (UTC).</figcaption>
</figure>
</section>
`;
}

/** What the journals cover, limited to any --since/--until window; undefined: nothing. */
function timeSpan(journals: readonly JournalSummary[]): { start: number; end: number } | undefined {
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const { coverage: c } of journals) {
    start = Math.min(start, Math.max(c.start, c.window?.since ?? c.start));
    end = Math.max(end, Math.min(c.end, c.window?.until ?? c.end));
  }
  return start <= end ? { start, end } : undefined;
}
