// The HTML report's pictures: source subnets → services, and new flows over time, as inline SVG.
import { printable } from '../../common/printable.js';
import { formatAddress, formatIPv6 } from '../core/address.js';
import { type Flow, isLoopback } from '../core/flows.js';

/**
 * Any string as HTML text or a quoted attribute value. Control characters become `\xNN` and
 * lone surrogates `\uNNNN` (visible, and they would not survive UTF-8), then `& < > " '` become
 * character references: a journal's strings can neither open an element nor end an attribute.
 */
export function escapeHtml(s: string): string {
  return printable(s)
    .replace(/[\ud800-\udfff]/gu, (c) => `\\u${(c.codePointAt(0) as number).toString(16)}`)
    .replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

const ENTITIES: { readonly [c: string]: string } = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** `10.1.2.0/24`, `2001:db8::/64`, or `loopback` (127.0.0.0/8 and ::1): a flow source's group. */
export function subnetOf(address: Uint8Array): string {
  if (isLoopback(address)) return 'loopback';
  if (address.length === 4) return `${address[0]}.${address[1]}.${address[2]}.0/24`;
  const prefix = new Uint8Array(16);
  prefix.set(address.subarray(0, 8));
  return `${formatIPv6(prefix)}/64`;
}

/**
 * What a flow reaches as its firewall rule sees it: protocol, destination after DNAT (the
 * filter hooks come after the nat ones, as in the rules generator) and port, or ICMP type.
 * `TCP 10.0.0.5:443`, `UDP [2001:db8::1]:53`, `ICMP 10.0.0.5 type 8`.
 */
export function serviceOf(flow: Flow): string {
  const to = flow.nat?.dst;
  const addr = formatAddress(to?.address ?? flow.dst);
  const proto = flow.table === 'ICMPv6' ? 'ICMPv6' : flow.table.slice(0, -2);
  if (flow.table === 'ICMPv4' || flow.table === 'ICMPv6') {
    return `${proto} ${addr} type ${flow.icmpType}`;
  }
  const port = to?.port ?? flow.dport;
  return flow.family === 6 ? `${proto} [${addr}]:${port}` : `${proto} ${addr}:${port}`;
}

/** Flows and how many of them are confirmed. */
export interface Tally {
  flows: number;
  confirmed: number;
}

/** One node of a side of the graph; `others` > 0 for the node gathering the least used ones. */
export interface GraphNode extends Tally {
  label: string;
  others: number;
}

export interface GraphEdge extends Tally {
  /** Indices into the graph's `left` and `right`. */
  from: number;
  to: number;
}

export interface FlowGraph {
  /** Source subnets, most flows first, then a gathering node if some were left out. */
  left: GraphNode[];
  /** Services, in the order that crosses edges least (the gathering node last). */
  right: GraphNode[];
  /** Heaviest first. */
  edges: GraphEdge[];
}

/**
 * The `n` nodes with most flows (ties by label), then one node gathering the rest, named
 * `other K <noun>s`; a map from each label to its node's index.
 */
export function topNodes(
  counts: ReadonlyMap<string, Tally>,
  n: number,
  noun: string,
): { nodes: GraphNode[]; index: Map<string, number> } {
  const all = [...counts].sort(
    ([a, x], [b, y]) => y.flows - x.flows || (a < b ? -1 : a > b ? 1 : 0),
  );
  const nodes: GraphNode[] = all.slice(0, n).map(([label, c]) => ({ label, ...c, others: 0 }));
  const index = new Map(nodes.map((node, i) => [node.label, i]));
  const rest = all.slice(n);
  if (rest.length > 0) {
    const other: GraphNode = {
      label: `other ${rest.length} ${noun}${rest.length === 1 ? '' : 's'}`,
      flows: 0,
      confirmed: 0,
      others: rest.length,
    };
    for (const [label, c] of rest) {
      other.flows += c.flows;
      other.confirmed += c.confirmed;
      index.set(label, nodes.length);
    }
    nodes.push(other);
  }
  return { nodes, index };
}

/** One bar width of the timeline, and how its label reads. */
export interface Bucket {
  us: number;
  label: string;
}

const SEC = 1e6;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const BUCKETS: readonly Bucket[] = [
  { us: SEC, label: 'second' },
  { us: 10 * SEC, label: '10 seconds' },
  { us: MIN, label: 'minute' },
  { us: 5 * MIN, label: '5 minutes' },
  { us: 15 * MIN, label: '15 minutes' },
  { us: HOUR, label: 'hour' },
  { us: 6 * HOUR, label: '6 hours' },
  { us: DAY, label: 'day' },
  { us: 7 * DAY, label: '7 days' },
];

/** At most this many bars: wider buckets for longer recordings. */
export const MAX_BARS = 300;

/** Where the first bucket starts: buckets up to a day start at multiples of their width, UTC. */
function alignedStart(start: number, size: number): number {
  const unit = Math.min(size, DAY);
  return Math.floor(start / unit) * unit;
}

/** The narrowest bucket that shows [start, end] in at most MAX_BARS bars, and their count. */
export function bucketFor(
  start: number,
  end: number,
): { bucket: Bucket; first: number; n: number } {
  const bars = (size: number) => Math.floor((end - alignedStart(start, size)) / size) + 1;
  let bucket = BUCKETS.find((b) => bars(b.us) <= MAX_BARS);
  if (bucket === undefined) {
    const days = Math.ceil((end - alignedStart(start, DAY) + 1) / (MAX_BARS * DAY));
    bucket = { us: days * DAY, label: `${days} days` };
  }
  return { bucket, first: alignedStart(start, bucket.us), n: bars(bucket.us) };
}

/** New flows per bucket of first-seen time, confirmed and not. */
export interface Timeline {
  bucket: Bucket;
  /** Start of the first bucket, µs since the epoch. */
  first: number;
  confirmed: number[];
  unconfirmed: number[];
}

/** Everything the pictures and the summary line need, from two passes over the flows. */
export interface Pictures extends Tally {
  graph: FlowGraph;
  /** Undefined without any flow or time range. */
  timeline: Timeline | undefined;
}

/** Nodes kept per side of the graph before the rest is gathered. */
export const TOP_NODES = 25;

/**
 * Counts the flows twice: per subnet and service (and the first-seen span) first, then the
 * edges between the kept nodes and the timeline buckets. Memory grows with the distinct
 * subnets and services, never with the flows.
 */
export function aggregate(
  flows: () => Iterable<Flow>,
  span: { start: number; end: number } | undefined,
  top = TOP_NODES,
): Pictures {
  const subnets = new Map<string, Tally>();
  const services = new Map<string, Tally>();
  const total: Tally = { flows: 0, confirmed: 0 };
  let start = span?.start ?? Number.POSITIVE_INFINITY;
  let end = span?.end ?? Number.NEGATIVE_INFINITY;
  const add = (map: Map<string, Tally>, key: string, confirmed: boolean) => {
    const c = map.get(key) ?? { flows: 0, confirmed: 0 };
    c.flows++;
    if (confirmed) c.confirmed++;
    map.set(key, c);
  };
  for (const f of flows()) {
    add(subnets, subnetOf(f.src), f.confirmed);
    add(services, serviceOf(f), f.confirmed);
    total.flows++;
    if (f.confirmed) total.confirmed++;
    if (f.firstSeen < start) start = f.firstSeen;
    if (f.firstSeen > end) end = f.firstSeen;
  }
  const left = topNodes(subnets, top, 'subnet');
  const right = topNodes(services, top, 'service');
  subnets.clear();
  services.clear();
  const edges = new Map<number, GraphEdge>();
  const width = right.nodes.length;
  const times = start <= end ? bucketFor(start, end) : undefined;
  const timeline: Timeline | undefined =
    times === undefined
      ? undefined
      : {
          bucket: times.bucket,
          first: times.first,
          confirmed: new Array<number>(times.n).fill(0),
          unconfirmed: new Array<number>(times.n).fill(0),
        };
  if (total.flows > 0) {
    for (const f of flows()) {
      const from = left.index.get(subnetOf(f.src)) as number;
      const to = right.index.get(serviceOf(f)) as number;
      const e = edges.get(from * width + to) ?? { from, to, flows: 0, confirmed: 0 };
      e.flows++;
      if (f.confirmed) e.confirmed++;
      edges.set(from * width + to, e);
      if (timeline !== undefined) {
        const i = Math.floor((f.firstSeen - timeline.first) / timeline.bucket.us);
        const bars = f.confirmed ? timeline.confirmed : timeline.unconfirmed;
        const at = Math.min(Math.max(i, 0), bars.length - 1);
        bars[at] = (bars[at] as number) + 1;
      }
    }
  }
  return { ...total, graph: ordered(left.nodes, right.nodes, [...edges.values()]), timeline };
}

/**
 * Services sorted by the mean position of the subnets reaching them (weighted by flows), which
 * keeps most edges from crossing; the gathering node stays last. Edges renumbered to match.
 */
function ordered(left: GraphNode[], right: GraphNode[], edges: GraphEdge[]): FlowGraph {
  const weight = right.map(() => ({ sum: 0, flows: 0 }));
  for (const e of edges) {
    const w = weight[e.to] as { sum: number; flows: number };
    w.sum += e.from * e.flows;
    w.flows += e.flows;
  }
  const centre = (i: number) => {
    const w = weight[i] as { sum: number; flows: number };
    return w.flows === 0 ? 0 : w.sum / w.flows;
  };
  const order = right.map((_, i) => i);
  order.sort((a, b) => {
    const [x, y] = [right[a] as GraphNode, right[b] as GraphNode];
    return (
      Number(x.others > 0) - Number(y.others > 0) ||
      centre(a) - centre(b) ||
      y.flows - x.flows ||
      a - b
    );
  });
  const place = new Array<number>(right.length);
  order.forEach((old, i) => {
    place[old] = i;
  });
  const moved = edges.map((e) => ({ ...e, to: place[e.to] as number }));
  moved.sort((a, b) => b.flows - a.flows || a.from - b.from || a.to - b.to);
  return { left, right: order.map((i) => right[i] as GraphNode), edges: moved };
}

const f1 = (n: number) => String(Math.round(n * 10) / 10);

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function tallyText(t: Tally): string {
  return `${plural(t.flows, 'flow')} (${t.confirmed} confirmed, ${t.flows - t.confirmed} unconfirmed)`;
}

/** `c` all confirmed, `u` none, `m` some: the class that colours an edge or a node. */
function confirmation(t: Tally): 'c' | 'm' | 'u' {
  return t.confirmed === t.flows ? 'c' : t.confirmed === 0 ? 'u' : 'm';
}

/** Labels longer than this are cut with an ellipsis (the tooltip has them whole). */
const LABEL_CHARS = 44;

function cut(label: string): string {
  return label.length <= LABEL_CHARS ? label : `${label.slice(0, LABEL_CHARS - 1)}…`;
}

const GRAPH_W = 960;
const LX = 270;
const RX = 640;
const NODE_W = 10;
const ROW_H = 22;
const TOP = 34;

/** The bipartite picture: subnets left, services right, an edge per pair with flows. */
export function graphSvg(graph: FlowGraph): string {
  const rows = Math.max(graph.left.length, graph.right.length, 1);
  const plotH = rows * ROW_H;
  const height = TOP + plotH + 64;
  const yOf = (i: number, n: number) => TOP + (i + 0.5) * (plotH / n);
  const out: string[] = [
    `<svg id="graph" class="graph" role="img" viewBox="0 0 ${GRAPH_W} ${height}" width="${GRAPH_W}" height="${height}">`,
    '<title>Source subnets and the services they reach</title>',
    `<text class="head" x="${LX + NODE_W}" y="16" text-anchor="end">source subnets (/24, /64)</text>`,
    `<text class="head" x="${RX}" y="16">services (after DNAT)</text>`,
  ];
  if (graph.edges.length === 0) {
    out.push(
      `<text class="empty" x="${GRAPH_W / 2}" y="${TOP + 14}" text-anchor="middle">no flows</text>`,
    );
  }
  const heaviest = graph.edges[0]?.flows ?? 1;
  const x1 = LX + NODE_W;
  const xm = (x1 + RX) / 2;
  out.push('<g class="edges">');
  for (const e of graph.edges) {
    const from = graph.left[e.from] as GraphNode;
    const to = graph.right[e.to] as GraphNode;
    const y1 = f1(yOf(e.from, graph.left.length));
    const y2 = f1(yOf(e.to, graph.right.length));
    const w = f1(1 + 9 * Math.sqrt(e.flows / heaviest));
    out.push(
      `<path class="edge ${confirmation(e)}" d="M${x1} ${y1}C${xm} ${y1} ${xm} ${y2} ${RX} ${y2}" stroke-width="${w}"><title>${escapeHtml(`${from.label} → ${to.label}: ${tallyText(e)}`)}</title></path>`,
    );
  }
  out.push('</g>');
  const node = (n: GraphNode, x: number, y: number, side: 'left' | 'right') => {
    const tx = side === 'left' ? x - 6 : x + NODE_W + 6;
    const anchor = side === 'left' ? ' text-anchor="end"' : '';
    const gathered = n.others > 0 ? ` (the ${n.others} with fewest flows, gathered)` : '';
    return `<g class="node ${side} ${confirmation(n)}"><title>${escapeHtml(`${n.label}${gathered}: ${tallyText(n)}`)}</title><rect x="${x}" y="${f1(y - 7)}" width="${NODE_W}" height="14" rx="2"/><text x="${tx}" y="${f1(y + 4)}"${anchor}>${escapeHtml(cut(n.label))}</text></g>`;
  };
  graph.left.forEach((n, i) => {
    out.push(node(n, LX, yOf(i, graph.left.length), 'left'));
  });
  graph.right.forEach((n, i) => {
    out.push(node(n, RX, yOf(i, graph.right.length), 'right'));
  });
  out.push(legend(TOP + plotH + 26));
  out.push('</svg>');
  return out.join('\n');
}

function legend(y: number): string {
  const items: [string, string][] = [
    ['c', 'all flows confirmed (a reply was seen)'],
    ['m', 'some confirmed'],
    ['u', 'none confirmed'],
  ];
  const parts = items.map(
    ([cls, text], i) =>
      `<path class="edge ${cls}" d="M${20 + i * 300} ${y}h36" stroke-width="4"/><text x="${64 + i * 300}" y="${y + 4}">${text}</text>`,
  );
  parts.push(
    `<text class="note" x="20" y="${y + 26}">line width grows with the square root of the flow count; hover over a line or a node for its counts</text>`,
  );
  return `<g class="legend">${parts.join('')}</g>`;
}

const TL_W = 960;
const TL_H = 220;
const PAD_L = 56;
const PAD_R = 16;
const PAD_T = 14;
const PAD_B = 52;

/** Axis tick spacings; a tick step is the first at least TICK_PX apart and a multiple of a bar. */
const TICKS = [SEC, 5 * SEC, 10 * SEC, 30 * SEC, MIN, 5 * MIN, 15 * MIN, 30 * MIN, HOUR]
  .concat([3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY])
  .concat([91 * DAY, 182 * DAY, 364 * DAY]);

/** Pixels between axis labels, so they never overlap (`11-27 07:40` is about 70). */
const TICK_PX = 90;

/** Bars are never wider than this: a short recording gets a short plot, not one huge bar. */
const MAX_BAR_PX = 28;

function tickStep(span: number, bucket: number, plotW: number): number {
  const least = (span * TICK_PX) / plotW;
  const step = TICKS.find((s) => s >= least && s % bucket === 0);
  return step ?? bucket * Math.ceil(least / bucket);
}

/** An instant as UTC text: as precise as the bars, with the date when the plot spans days. */
function timeText(us: number, span: number, bucket: number): string {
  const iso = new Date(us / 1000).toISOString();
  if (bucket >= DAY) return iso.slice(0, 10);
  const time = iso.slice(11, bucket < MIN ? 19 : 16);
  return span <= DAY ? time : `${iso.slice(5, 10)} ${time}`;
}

function isoText(us: number, bucket: number): string {
  return `${new Date(us / 1000).toISOString().slice(0, bucket < MIN ? 19 : 16)}Z`;
}

/** Bars of new flows per bucket of first-seen time, confirmed stacked under unconfirmed. */
export function timelineSvg(tl: Timeline | undefined): string {
  const open = `<svg id="timeline" class="timeline" role="img" viewBox="0 0 ${TL_W} ${TL_H}" width="${TL_W}" height="${TL_H}">`;
  if (tl === undefined) {
    return `${open}<title>New flows over time</title><text class="empty" x="${TL_W / 2}" y="${TL_H / 2}" text-anchor="middle">no flows</text></svg>`;
  }
  const n = tl.confirmed.length;
  const size = tl.bucket.us;
  const per = `per ${tl.bucket.label}`;
  const plotW = Math.min(TL_W - PAD_L - PAD_R, n * MAX_BAR_PX);
  const plotH = TL_H - PAD_T - PAD_B;
  const base = PAD_T + plotH;
  const right = PAD_L + plotW;
  const barW = plotW / n;
  const gap = barW >= 4 ? 1 : 0;
  const totals = tl.confirmed.map((c, i) => c + (tl.unconfirmed[i] as number));
  const top = Math.max(1, ...totals);
  const yOf = (v: number) => base - (v / top) * plotH;
  const out: string[] = [
    open,
    `<title>New flows ${per} (UTC)</title>`,
    `<line class="grid" x1="${PAD_L}" y1="${PAD_T}" x2="${right}" y2="${PAD_T}"/>`,
    `<text x="${PAD_L - 6}" y="${PAD_T + 4}" text-anchor="end">${top}</text>`,
    `<text x="${PAD_L - 6}" y="${base + 4}" text-anchor="end">0</text>`,
  ];
  for (let i = 0; i < n; i++) {
    const total = totals[i] as number;
    if (total === 0) continue;
    const c = tl.confirmed[i] as number;
    const x = f1(PAD_L + i * barW + gap / 2);
    const w = f1(Math.max(barW - gap, 0.5));
    const title = `${isoText(tl.first + i * size, size)} + ${tl.bucket.label}: ${plural(total, 'new flow')} (${c} confirmed, ${total - c} unconfirmed)`;
    out.push(`<g class="bar"><title>${escapeHtml(title)}</title>`);
    if (c > 0) {
      out.push(
        `<rect class="bar-c" x="${x}" y="${f1(yOf(c))}" width="${w}" height="${f1(base - yOf(c))}"/>`,
      );
    }
    if (total > c) {
      out.push(
        `<rect class="bar-u" x="${x}" y="${f1(yOf(total))}" width="${w}" height="${f1(yOf(c) - yOf(total))}"/>`,
      );
    }
    out.push('</g>');
  }
  out.push(
    `<line class="axis" x1="${PAD_L}" y1="${base}" x2="${right}" y2="${base}"/>`,
    `<line class="axis" x1="${PAD_L}" y1="${PAD_T}" x2="${PAD_L}" y2="${base}"/>`,
  );
  const span = n * size;
  const step = tickStep(span, size, plotW);
  for (let t = Math.ceil(tl.first / step) * step; t <= tl.first + span; t += step) {
    const x = f1(PAD_L + ((t - tl.first) / size) * barW);
    out.push(
      `<line class="axis" x1="${x}" y1="${base}" x2="${x}" y2="${base + 5}"/>`,
      `<text x="${x}" y="${base + 18}" text-anchor="middle">${timeText(t, span, size)}</text>`,
    );
  }
  out.push(
    `<text class="note" x="${PAD_L}" y="${TL_H - 8}">new flows ${per} by first seen, UTC, ${isoText(tl.first, size)} → ${isoText(tl.first + span, size)}: `,
    `<tspan class="key-c">■</tspan> confirmed <tspan class="key-u">■</tspan> unconfirmed</text>`,
    '</svg>',
  );
  return out.join('\n');
}
