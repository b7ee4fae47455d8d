// The HTML report: escaping, the pictures' counts, and the page itself in real headless Chromium.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { type Browser, chromium, type Page } from 'playwright-core';
import t from 'tap';
import { addressBytes as bytes, formatAddress } from '../../../analyzer/core/address.js';
import { type Flow, FlowTable } from '../../../analyzer/core/flows.js';
import type { JournalSummary } from '../../../analyzer/core/replay.js';
import { CONTENT_SECURITY_POLICY, htmlChunks, SHOWN } from '../../../analyzer/report/html.js';
import {
  aggregate,
  bucketFor,
  escapeHtml,
  MAX_BARS,
  serviceOf,
  subnetOf,
  type Tally,
  topNodes,
} from '../../../analyzer/report/html-graph.js';
import { COLUMNS } from '../../../analyzer/report/table.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { printable } from '../../../common/printable.js';
import type { CtEvent } from '../../../journal/event.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbAddress, arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER } from '../../helpers/journals.js';
import { ev, journalSummary, SEED_EVENTS, tempDir } from '../fixtures.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');
const MIN = 60e6;

/** What the page must show for a journal string: control characters and lone surrogates visible. */
function shown(s: string): string {
  return printable(s).replace(
    /[\ud800-\udfff]/gu,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16)}`,
  );
}

/** Undoes the five character references escapeHtml writes; anything else left is a fault. */
function unescapeHtml(s: string): string {
  const map: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, k: string) => map[k] as string);
}

/** Strings a journal could hold: any at all, and mixes of the markup that would do harm. */
const unsafe = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc
    .array(
      fc.constantFrom(
        '<',
        '>',
        '"',
        "'",
        '&',
        '&amp;',
        '</script>',
        '<script>',
        '</title>',
        '</style>',
        '<!--',
        '-->',
        ']]>',
        '<svg onload=x>',
        '\u0000',
        '\r\n',
        'a',
        ' ',
        '\u2028',
        '\ud800',
      ),
      { maxLength: 8 },
    )
    .map((parts) => parts.join('')),
);

t.test('escapeHtml: no markup character survives, and the text reads back', async (t) => {
  checkProperty(
    t,
    fc.property(unsafe, (s) => {
      const e = escapeHtml(s);
      assert.doesNotMatch(e, /[<>"']/);
      assert.doesNotMatch(
        e.replace(/&(amp|lt|gt|quot|#39);/g, ''),
        /&/,
        'every & starts a reference',
      );
      assert.equal(unescapeHtml(e), shown(s));
    }),
    { numRuns: 500 },
  );
  t.equal(
    escapeHtml(`<a href="x" title='y'>&`),
    '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;',
  );
  t.equal(escapeHtml('a\nb\u0000\ud800'), 'a\\x0ab\\x00\\ud800');
});

t.test('subnetOf: /24 for IPv4, /64 for IPv6, loopback on its own', async (t) => {
  t.equal(subnetOf(bytes('192.168.100.118')), '192.168.100.0/24');
  t.equal(subnetOf(bytes('127.0.0.53')), 'loopback');
  t.equal(subnetOf(bytes('::1')), 'loopback');
  t.equal(subnetOf(bytes('2001:db8::10')), '2001:db8::/64');
  t.equal(subnetOf(bytes('fe80::1')), 'fe80::/64');
  checkProperty(
    t,
    fc.property(arbAddress(4), arbAddress(4), (a, b) => {
      if (a[0] === 127 || b[0] === 127) return;
      const same24 = a.subarray(0, 3).every((x, i) => x === b[i]);
      assert.equal(subnetOf(a) === subnetOf(b), same24);
    }),
  );
  checkProperty(
    t,
    fc.property(arbAddress(6), arbAddress(6), (a, b) => {
      if (subnetOf(a) === 'loopback' || subnetOf(b) === 'loopback') return;
      const same64 = a.subarray(0, 8).every((x, i) => x === b[i]);
      assert.equal(subnetOf(a) === subnetOf(b), same64);
    }),
  );
});

function flowsOf(events: readonly CtEvent[], host = ''): Flow[] {
  const table = new FlowTable();
  const id = table.hostId(host);
  for (const e of events) table.add(e, id);
  return [...table.flows()];
}

/** A TCP event whose destination was rewritten to `to`:`port` (the reply comes from there). */
function dnat(e: CtEvent, to: string, port: number): CtEvent {
  return { ...e, reply: { ...e.reply, src: bytes(to), sport: port } };
}

t.test('serviceOf: protocol, destination after DNAT and port, or ICMP type', async (t) => {
  const services = flowsOf([
    ev(6, '10.0.0.1', '10.0.0.2', 40000, 443, 0x0e),
    ev(17, '2001:db8::10', '2001:db8::53', 40000, 53, 0x0a),
    ev(1, '10.0.0.1', '10.0.0.2', 0, 0, 0x0a, [8, 0]),
    ev(58, '2001:db8::10', '2001:db8::1', 0, 0, 0x0a, [128, 0]),
    dnat(ev(6, '10.0.0.1', '203.0.113.1', 40000, 80, 0x0e), '10.0.2.9', 8080),
  ]).map(serviceOf);
  t.strictSame(services.sort(), [
    'ICMP 10.0.0.2 type 8',
    'ICMPv6 2001:db8::1 type 128',
    'TCP 10.0.0.2:443',
    'TCP 10.0.2.9:8080',
    'UDP [2001:db8::53]:53',
  ]);
});

const arbCounts = fc
  .dictionary(
    fc.string({ minLength: 1, maxLength: 6 }),
    fc.nat(50).chain((c) =>
      fc.record({
        confirmed: fc.constant(c),
        flows: fc.integer({ min: Math.max(c, 1), max: c + 50 }),
      }),
    ),
    { maxKeys: 40 },
  )
  .map((d) => new Map<string, Tally>(Object.entries(d)));

t.test('topNodes: the n busiest nodes, the rest gathered into one, no flow lost', async (t) => {
  checkProperty(
    t,
    fc.property(arbCounts, fc.integer({ min: 1, max: 30 }), (counts, n) => {
      const { nodes, index } = topNodes(counts, n, 'subnet');
      const sum = (list: Iterable<Tally>, k: keyof Tally) =>
        [...list].reduce((s, x) => s + x[k], 0);
      assert.equal(sum(nodes, 'flows'), sum(counts.values(), 'flows'));
      assert.equal(sum(nodes, 'confirmed'), sum(counts.values(), 'confirmed'));
      assert.equal(nodes.length, counts.size <= n ? counts.size : n + 1);
      const gathered = counts.size > n ? counts.size - n : 0;
      const other = nodes.find((x) => x.others > 0);
      assert.equal(other?.others ?? 0, gathered);
      if (other !== undefined) {
        assert.equal(other.label, `other ${gathered} subnet${gathered === 1 ? '' : 's'}`);
        assert.equal(nodes.at(-1), other, 'the gathering node comes last');
      }
      const kept = nodes.filter((x) => x.others === 0);
      assert.equal(kept.length, Math.min(n, counts.size));
      const least = Math.min(...kept.map((x) => x.flows));
      for (const [label, c] of counts) {
        const at = index.get(label) as number;
        const node = nodes[at];
        assert.ok(node !== undefined, 'every label has a node');
        if (node.others > 0) assert.ok(c.flows <= least, 'only the least used are gathered');
        else assert.strictEqual(node.label, label);
      }
    }),
    { numRuns: 300 },
  );
});

t.test('bucketFor: the narrowest bucket that fits in MAX_BARS bars, aligned in UTC', async (t) => {
  const start = Date.UTC(2026, 10, 27, 7, 39, 43) * 1000;
  const label = (span: number) => bucketFor(start, start + span).bucket.label;
  t.equal(label(1.1e6), 'second');
  t.equal(label(30 * MIN), '10 seconds');
  t.equal(label(60 * MIN), 'minute');
  t.equal(label(24 * 60 * MIN), '5 minutes');
  t.equal(label(3 * 24 * 60 * MIN), '15 minutes');
  t.equal(label(7 * 24 * 60 * MIN), 'hour');
  t.equal(label(365 * 24 * 60 * MIN), '7 days');
  t.equal(label(1000 * 365 * 24 * 60 * MIN), '1217 days');
  const hour = bucketFor(start, start + 7 * 24 * 60 * MIN);
  t.equal(hour.first, Date.UTC(2026, 10, 27, 7) * 1000, 'hours start on the hour');
  checkProperty(
    t,
    fc.property(
      fc.integer({ min: 0, max: 2 ** 52 }),
      fc.integer({ min: 0, max: 2 ** 50 }),
      (from, span) => {
        const { bucket, first, n } = bucketFor(from, from + span);
        assert.ok(n >= 1 && n <= MAX_BARS, `${n} bars`);
        assert.ok(first <= from, 'the first bar starts at or before the start');
        assert.ok(first + n * bucket.us > from + span, 'the last bar holds the end');
        assert.ok(first + (n - 1) * bucket.us <= from + span, 'no empty bar after the end');
      },
    ),
    { numRuns: 500 },
  );
});

t.test('aggregate: every flow counted once per side, per edge and per bar', async (t) => {
  checkProperty(
    t,
    fc.property(arbFlowEvents({ maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (events, top) => {
      const flows = flowsOf(events);
      let calls = 0;
      const pics = aggregate(
        () => {
          calls++;
          return flows;
        },
        undefined,
        top,
      );
      assert.ok(calls <= 2, 'two passes at most');
      const sum = (list: readonly Tally[], k: keyof Tally) => list.reduce((s, x) => s + x[k], 0);
      const { left, right, edges } = pics.graph;
      const confirmed = flows.filter((f) => f.confirmed).length;
      assert.equal(pics.flows, flows.length);
      assert.equal(pics.confirmed, confirmed);
      for (const list of [left, right, edges]) {
        assert.equal(sum(list, 'flows'), flows.length);
        assert.equal(sum(list, 'confirmed'), confirmed);
      }
      assert.ok(left.length <= top + 1 && right.length <= top + 1);
      assert.equal(
        new Set(edges.map((e) => `${e.from} ${e.to}`)).size,
        edges.length,
        'one edge per pair',
      );
      const tl = pics.timeline;
      if (flows.length === 0) return;
      assert.ok(tl !== undefined);
      assert.equal(
        tl.confirmed.reduce((a, b) => a + b, 0),
        confirmed,
      );
      assert.equal(
        tl.unconfirmed.reduce((a, b) => a + b, 0),
        flows.length - confirmed,
      );
      for (const f of flows) {
        const i = Math.floor((f.firstSeen - tl.first) / tl.bucket.us);
        assert.ok(i >= 0 && i < tl.confirmed.length, 'every first-seen time falls in a bar');
      }
    }),
    { numRuns: 200 },
  );
});

t.test('aggregate: a service reached from a gathered subnet keeps its edge', async (t) => {
  const events = [1, 2, 3, 4].flatMap((n) =>
    Array.from({ length: n }, (_, i) =>
      ev(6, `10.0.${n}.${i + 1}`, '10.9.9.9', 40000, 22, n % 2 ? 0x0a : 0x08),
    ),
  );
  const pics = aggregate(() => flowsOf(events), undefined, 2);
  t.strictSame(
    pics.graph.left.map((n) => [n.label, n.flows]),
    [
      ['10.0.4.0/24', 4],
      ['10.0.3.0/24', 3],
      ['other 2 subnets', 3],
    ],
  );
  t.strictSame(
    pics.graph.edges.map((e) => [e.from, e.to, e.flows, e.confirmed]),
    [
      [0, 0, 4, 0],
      [1, 0, 3, 3],
      [2, 0, 3, 1],
    ],
  );
});

const summary = (
  s: Partial<Record<'path' | 'host' | 'kernel' | 'netns' | 'warning', string>>,
): JournalSummary => journalSummary({ ...s, warnings: [s.warning ?? 'a warning'] });

function documentOf(s: Parameters<typeof summary>[0]): string {
  const flows = flowsOf(SEED_EVENTS, s.host ?? 'fw1');
  return [...htmlChunks([summary(s)], () => flows)].join('');
}

t.test(
  'html: self-contained, its CSP hashes match, one row per flow, streamed in chunks',
  async (t) => {
    const doc = documentOf({});
    t.ok(doc.startsWith('<!DOCTYPE html>\n'));
    const scripts = [...doc.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] as string);
    const style = /<style>([\s\S]*?)<\/style>/.exec(doc)?.[1] ?? '';
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    t.equal(scripts.length, 2, 'an early script in <head>, the table script at the end');
    t.match(CONTENT_SECURITY_POLICY, `script-src ${scripts.map(hash).join(' ')};`);
    t.match(CONTENT_SECURITY_POLICY, `style-src ${hash(style)};`);
    t.match(CONTENT_SECURITY_POLICY, /^default-src 'none';/);
    t.ok(doc.includes(`content="${CONTENT_SECURITY_POLICY}"`));
    // (The policy's base64 hashes may hold `//`.)
    const rest = doc.replace(CONTENT_SECURITY_POLICY, '');
    t.notMatch(rest, /[a-z]+:\/\/|\/\/[a-z]|url\(|@import/i, 'no URL of anything outside');
    t.strictSame(doc.match(/\b(?:src|href)=/g), ['href='], 'the data: favicon is the one link');
    t.equal(doc.match(/<tr data-c=/g)?.length, flowsOf(SEED_EVENTS).length);
    // Many flows: the document arrives in several chunks, none much over the chunk size.
    const many = Array.from({ length: 3000 }, (_, i) =>
      ev(6, `10.${i >> 8}.${i & 255}.1`, '10.9.9.9', 40000, 22, 0x0a),
    );
    const flows = flowsOf(many);
    const chunks = [...htmlChunks([summary({})], () => flows)];
    t.ok(chunks.length > 3, `${chunks.length} chunks`);
    t.ok(Math.max(...chunks.map((c) => c.length)) < 2 * 64 * 1024);
    t.equal(chunks.join('').match(/<tr data-c=/g)?.length, 3000);
  },
);

t.test('html: no flows still makes a whole page, its pictures saying so', async (t) => {
  const doc = [...htmlChunks([summary({})], () => [])].join('');
  t.match(doc, '<p id="count" role="status">0 of 0 flows</p>');
  t.match(doc, /<svg id="graph"[\s\S]*>no flows<\/text>/);
  t.match(doc, /<svg id="timeline"/);
  t.notMatch(doc, /<rect class="bar-/, 'no bars');
  t.ok(doc.trimEnd().endsWith('</html>'));
});

function staleBuild(): string | undefined {
  try {
    const built = statSync(CLI).mtimeMs;
    for (const f of ['report/html.ts', 'report/html-graph.ts', 'cli.ts']) {
      if (statSync(join(PACKAGE_ROOT, 'analyzer', f)).mtimeMs > built) {
        return `analyzer/${f} is newer than ${CLI}: run npm run build first`;
      }
    }
  } catch {
    return `${CLI} is missing: run npm run build first`;
  }
  return undefined;
}

const EVIL_HOST_A = '<script>alert(1)</script>';
const EVIL_HOST_B = '<img src=x onerror=alert(2)>';
const EVIL_NETNS = `"><svg onload=alert(3)>'`;

const at = (e: CtEvent, minutes: number): CtEvent => ({ ...e, time: HEADER.start + minutes * MIN });
const JOURNAL_A = [
  at(ev(6, '10.0.0.2', '10.0.1.5', 40000, 22, 0x0e), 0),
  at(ev(6, '10.0.0.10', '10.0.1.5', 40001, 443, 0x0e), 5),
  at(ev(6, '9.255.255.255', '10.0.1.5', 40002, 8080, 0x08), 10),
  at(ev(17, '10.0.0.2', '8.8.8.8', 40003, 53, 0x0a), 12),
  at(ev(17, 'fe80::1', 'ff02::fb', 5353, 5353, 0x08), 20),
  at(ev(1, '10.0.0.2', '10.0.1.5', 0, 0, 0x0a, [8, 0]), 30),
  at(ev(6, '2001:db8::10', '2001:db8:0:1::443', 33000, 443, 0x0e), 40),
  at(ev(58, '2001:db8::10', '2606:4700:4700::1111', 0, 0, 0x08, [128, 0]), 45),
  at(dnat(ev(6, '203.0.113.7', '198.51.100.1', 50000, 443, 0x0e), '10.0.2.9', 8443), 47),
];
const JOURNAL_B = [
  at(ev(6, '10.0.0.2', '10.0.1.5', 40010, 22, 0x0e), 2),
  at(ev(6, '127.0.0.1', '127.0.0.1', 40011, 631, 0x0e), 50),
  at(ev(17, '192.168.1.7', '10.0.1.5', 40012, 53, 0x08), 55),
];

function writeHourJournal(path: string, header: Partial<typeof HEADER>, events: CtEvent[]) {
  const w = JournalWriter.create(path, { ...HEADER, ...header });
  w.append(events);
  w.close({ stop: HEADER.start + 60 * MIN });
}

/** The flows both journals make, in table order, as the page must list them. */
function expectedFlows(): Flow[] {
  const table = new FlowTable();
  const [a, b] = [table.hostId(EVIL_HOST_A), table.hostId(EVIL_HOST_B)];
  for (const e of JOURNAL_A) table.add(e, a);
  for (const e of JOURNAL_B) table.add(e, b);
  return [...table.flows()];
}

/** The filter as the page documents it: rows holding every word typed, any case. */
function filtered(flows: readonly Flow[], text: string, confirmed = true, unconfirmed = true) {
  const words = text
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '');
  return flows.filter((f) => {
    const row = COLUMNS.map(([, get]) => get(f))
      .join(' ')
      .toLowerCase();
    return (f.confirmed ? confirmed : unconfirmed) && words.every((w) => row.includes(w));
  });
}

const column = (page: Page, name: string) =>
  page.evaluate((name) => {
    const doc = (globalThis as unknown as { document: DomDocument }).document;
    const heads = [...doc.querySelectorAll('#flow-table thead th')].map((h) => h.textContent);
    const i = heads.indexOf(name);
    return [...doc.querySelectorAll('#flow-table tbody tr')]
      .filter((r) => !r.hidden)
      .map((r) => r.cells[i]?.textContent ?? '');
  }, name);

/** The few DOM shapes the page functions use (the test tsconfig has no DOM library). */
interface DomNode {
  textContent: string;
  hidden: boolean;
  tagName: string;
  cells: ArrayLike<DomNode>;
  getAttributeNames(): string[];
  querySelectorAll(selector: string): Iterable<DomNode>;
}
interface DomDocument {
  title: string;
  getElementById(id: string): DomNode | null;
  querySelectorAll(selector: string): Iterable<DomNode>;
}

async function countIs(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (text) => {
      const doc = (globalThis as unknown as { document: DomDocument }).document;
      return doc.getElementById('count')?.textContent === text;
    },
    text,
    { timeout: 5000 },
  );
}

/** The heading of a column, by its place among COLUMNS (sorting adds an arrow to its text). */
const heading = (name: string) =>
  `#flow-table thead th:nth-child(${COLUMNS.findIndex(([n]) => n === name) + 1})`;

t.test('html in Chromium', async (t) => {
  const stale = staleBuild();
  if (stale !== undefined) {
    t.fail(stale);
    return;
  }
  const dir = tempDir(t, 'html');
  const [a, b, out] = ['a.mpk', 'b.mpk', 'flows.html'].map((f) => join(dir, f)) as [
    string,
    string,
    string,
  ];
  writeHourJournal(a, { host: EVIL_HOST_A }, JOURNAL_A);
  writeHourJournal(b, { host: EVIL_HOST_B, netns: EVIL_NETNS }, JOURNAL_B);
  const run = spawnSync(process.execPath, [CLI, '--format', 'html', '-o', out, a, b], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(run.status, 0, run.stderr);
  const html = readFileSync(out, 'utf8');
  t.ok(html.startsWith('<!DOCTYPE html>'), 'the CLI writes an HTML document');
  const flows = expectedFlows();
  t.equal(flows.length, 11, 'the fixture makes 11 flows (one seen by both hosts)');

  const browser: Browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  t.teardown(() => browser.close());
  const url = pathToFileURL(out).href;

  t.test(
    'the page: rows, sorting, filtering, pictures, nothing fetched, nothing run',
    async (t) => {
      const page = await browser.newPage();
      const requests: string[] = [];
      const dialogs: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(url);

      t.equal(await page.locator('#flow-table tbody tr').count(), flows.length, 'one row per flow');
      t.equal(
        await page.locator('#count').textContent(),
        `${flows.length} of ${flows.length} flows`,
      );
      t.strictSame(
        await column(page, 'src'),
        flows.map((f) => formatAddress(f.src)),
        'table order',
      );

      // Ports sort as numbers, empty (ICMP) cells last either way.
      const before = await column(page, 'dport');
      const numeric = (dir: number) => (x: string, y: string) =>
        x === '' || y === '' ? Number(x === '') - Number(y === '') : dir * (Number(x) - Number(y));
      await page.click(heading('dport'));
      const up = await column(page, 'dport');
      t.strictSame(up, [...before].sort(numeric(1)));
      t.ok(
        up.indexOf('22') < up.indexOf('443') && up.indexOf('443') < up.indexOf('8080'),
        '22 < 443 < 8080',
      );
      await page.click(heading('dport'));
      t.strictSame(
        await column(page, 'dport'),
        [...before].sort(numeric(-1)),
        'a second click reverses',
      );
      t.equal(await page.getAttribute(heading('dport'), 'aria-sort'), 'descending');

      // Addresses sort by family, then bytes: 9.255.255.255 < 10.0.0.2 < 10.0.0.10, not as text.
      await page.click(heading('src'));
      const bySrc = [...flows]
        .map((f, i) => ({ f, i }))
        .sort((x, y) => x.f.family - y.f.family || Buffer.compare(x.f.src, y.f.src) || x.i - y.i)
        .map(({ f }) => formatAddress(f.src));
      t.strictSame(await column(page, 'src'), bySrc);
      t.equal((await column(page, 'src'))[0], '9.255.255.255');

      // Filtering: every word typed, any case; the toggles; the count.
      const check = async (text: string, confirmed: boolean, unconfirmed: boolean, n: number) => {
        await page.fill('#filter', text);
        await page.setChecked('#show-c', confirmed);
        await page.setChecked('#show-u', unconfirmed);
        const want = filtered(flows, text, confirmed, unconfirmed);
        t.equal(want.length, n, `the fixture has ${n} rows for "${text}"`);
        await countIs(page, `${n} of ${flows.length} flows`);
        t.strictSame(
          (await column(page, 'src')).sort(),
          want.map((f) => formatAddress(f.src)).sort(),
        );
      };
      await check('10.0.1.5 TCP', true, true, 3);
      await check('10.0.1.5 tcp', true, false, 2);
      await check('', true, false, 7);
      await check('', false, true, 4);
      await check('udp fe80', true, true, 1);
      await check('img onerror', true, true, 3);
      await check('no-such-word', true, true, 0);
      await check('', true, true, 11);

      // The pictures are drawn.
      t.ok((await page.locator('#graph g.edges path').count()) > 0, 'graph edges');
      t.ok((await page.locator('#graph g.node').count()) >= 2, 'graph nodes');
      t.ok((await page.locator('#timeline rect').count()) > 0, 'timeline bars');
      for (const id of ['#graph', '#timeline']) {
        const box = await page.locator(id).boundingBox();
        t.ok(box !== null && box.width > 100 && box.height > 100, `${id} has a size`);
      }
      const edges = await page
        .locator('#graph g.edges path')
        .evaluateAll((ps) =>
          ps.map(
            (p) =>
              (p as unknown as { getBBox(): { width: number; height: number } }).getBBox().width,
          ),
        );
      t.ok(
        edges.every((w) => w > 0),
        'every edge has a length',
      );

      // Journal strings are text.
      const body = (await page.textContent('body')) ?? '';
      for (const s of [EVIL_HOST_A, EVIL_HOST_B, EVIL_NETNS]) t.ok(body.includes(s), `shows ${s}`);
      t.ok((await page.title()).includes(EVIL_HOST_A), 'the title too');
      t.equal(await page.locator('script').count(), 2, 'only the report’s two scripts');
      t.equal(await page.locator('img').count(), 0);
      t.equal(await page.locator('svg').count(), 2, 'only the two pictures');
      t.equal(await page.locator('[onerror], [onload]').count(), 0);
      t.strictSame(dialogs, [], 'no dialog opened');
      t.strictSame(requests, [url], 'no request but the document');
      t.strictSame(problems, [], 'no console error: the CSP lets the style and script in');
      await page.close();
    },
  );

  t.test('the page without JavaScript: the table and the pictures are there', async (t) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(url);
    t.equal(await page.locator('#flow-table tbody tr:visible').count(), flows.length);
    t.ok(await page.locator('#graph').isVisible());
    t.ok(await page.locator('#timeline').isVisible());
    t.notOk(await page.locator('#controls').isVisible(), 'no controls that cannot work');
    await context.close();
  });

  t.test(`a long table: the first ${SHOWN} matching rows are displayed`, async (t) => {
    const dir = tempDir(t, 'html-long');
    const n = SHOWN + 100;
    const many = Array.from({ length: n }, (_, i) =>
      ev(6, `10.${i >> 8}.${i & 255}.1`, '10.9.9.9', 40000, 1 + i, i % 2 ? 0x0a : 0x08),
    );
    const file = join(dir, 'long.html');
    writeFileSync(file, [...htmlChunks([summary({})], () => flowsOf(many))].join(''));
    const page = await browser.newPage();
    await page.goto(pathToFileURL(file).href);
    const rows = page.locator('#flow-table tbody tr');
    const visible = page.locator('#flow-table tbody tr:visible');
    t.equal(await rows.count(), n, 'every flow is in the page');
    t.equal(await visible.count(), SHOWN);
    t.match(await page.textContent('#count'), `${n} of ${n} flows (the first ${SHOWN} shown`);
    await page.click(heading('dport'));
    await page.click(heading('dport'));
    const ports = await column(page, 'dport');
    t.strictSame(
      ports.slice(0, 3),
      [String(n), String(n - 1), String(n - 2)],
      'sorting picks the rows shown',
    );
    t.equal(ports.length, SHOWN);
    await page.setChecked('#show-u', false);
    await countIs(page, `${n / 2} of ${n} flows`);
    t.equal(await visible.count(), n / 2, 'under the limit, every match is shown');
    await page.close();
    const off = await browser.newContext({ javaScriptEnabled: false });
    const still = await off.newPage();
    await still.goto(pathToFileURL(file).href);
    t.equal(
      await still.locator('#flow-table tbody tr:visible').count(),
      n,
      'without JavaScript, all',
    );
    await off.close();
  });

  t.test('any journal string is text: no element or attribute of its own', async (t) => {
    const page = await browser.newPage();
    await page.setContent('<!DOCTYPE html><title>parser</title>');
    const parse = (doc: string) =>
      page.evaluate((doc) => {
        const g = globalThis as unknown as {
          DOMParser: new () => { parseFromString(s: string, type: string): DomDocument };
        };
        const d = new g.DOMParser().parseFromString(doc, 'text/html');
        const texts = (sel: string) => [...d.querySelectorAll(sel)].map((e) => e.textContent);
        return {
          shape: [...d.querySelectorAll('*')].map(
            (e) => `${e.tagName}[${e.getAttributeNames().sort().join(' ')}]`,
          ),
          title: d.title,
          h3: texts('.journal h3'),
          dd: texts('.journal dd'),
          warnings: texts('.warnings li'),
          hosts: texts('#flow-table tbody td:last-child'),
        };
      }, doc);
    const reference = await parse(documentOf({}));
    const details = await fc.check(
      fc.asyncProperty(unsafe, unsafe, unsafe, unsafe, async (host, path, kernel, warning) => {
        const got = await parse(documentOf({ host, path, kernel, netns: host, warning }));
        assert.deepEqual(got.shape, reference.shape, 'the same elements and attributes');
        assert.equal(got.h3[0], shown(path));
        assert.deepEqual(got.dd.slice(0, 3), [shown(host), shown(kernel), shown(host)]);
        assert.deepEqual(got.warnings, [`Warning: ${shown(warning)}`]);
        assert.ok(got.hosts.every((h) => h === shown(host)));
        // document.title collapses runs of ASCII whitespace.
        const collapse = (x: string) => x.replace(/[ \t\n\f\r]+/g, ' ');
        assert.ok(collapse(got.title).includes(collapse(shown(host))));
      }),
      { numRuns: 150 },
    );
    if (details.failed) t.fail(fc.defaultReportMessage(details) ?? 'property failed');
    else t.pass(`property held for ${details.numRuns} runs`);
    await page.close();
  });
});
