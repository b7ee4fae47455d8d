// The JSON report against its published schema (docs/flows.schema.json): every field it writes
// is documented there, with the documented type, for any journal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import t from 'tap';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { jsonChunks, tableReport } from '../../../analyzer/report/json.js';
import { JournalWriter } from '../../../journal/writer.js';
import { arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER, tempDir } from '../../helpers/journals.js';
import { arbMode } from '../fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'docs', 'flows.schema.json'), 'utf8'));

/**
 * The schema with every object closed (additionalProperties false where it lists properties):
 * the published one stays open, since fields may be added within a version, but what this
 * version writes must all be in it.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'const' ? v : closed(v);
  // Only typed objects: the branches of a oneOf only narrow the enclosing object's properties.
  if (out.type === 'object' && 'properties' in out && !('additionalProperties' in out)) {
    out.additionalProperties = false;
  }
  return out;
}

const validateOpen = new Ajv2020({ allErrors: true }).compile(SCHEMA);
const validateClosed = new Ajv2020({ allErrors: true }).compile(closed(SCHEMA) as object);

function check(doc: unknown, what: string): void {
  for (const [name, validate] of [
    ['published', validateOpen],
    ['closed', validateClosed],
  ] as const) {
    if (!validate(doc)) {
      assert.fail(`${what} fails the ${name} schema: ${JSON.stringify(validate.errors, null, 1)}`);
    }
  }
}

const ADDRESSES = [
  { ifname: 'eth0', family: 4 as const, address: new Uint8Array([10, 0, 0, 1]), prefix: 24 },
  { ifname: 'lo', family: 4 as const, address: new Uint8Array([127, 0, 0, 1]), prefix: 8 },
];

t.test('schema: any journal, mode and window gives a report the closed schema accepts', (t) => {
  const dir = tempDir(t, 'json-schema');
  let n = 0;
  checkProperty(
    t,
    fc.property(
      fc.array(arbFlowEvents({ maxLength: 30 }), { minLength: 1, maxLength: 3 }),
      arbMode,
      fc.boolean(),
      fc.boolean(),
      fc.option(fc.constantFrom('tcp', 'mark', 'events'), { nil: undefined }),
      (journals, collapse, withGap, window, filter) => {
        const paths = journals.map((evs, i) => {
          const path = join(dir, `j${n++}.mpk`);
          const options: Record<string, unknown> = {
            ...HEADER.options,
            snapshot: i % 2 === 0,
            filter: {
              protos: filter === 'tcp' ? [6] : null,
              mark: filter === 'mark' ? { value: 16, mask: 255 } : null,
              noLoopback: i === 1,
            },
            events: { new: true, update: filter !== 'events', destroy: true },
          };
          const w = JournalWriter.create(path, {
            ...HEADER,
            host: `host<${i}>"`,
            options,
            ...(i === 0 ? { addresses: ADDRESSES } : {}),
          });
          w.append(evs);
          if (withGap) {
            w.appendGap({
              from: 1,
              to: 2,
              lost: 7,
              lostKnown: i > 0,
              cause: 'ENOBUFS',
              resync: -1,
            });
          }
          if (i === 2) w.closeAfterFailure();
          else w.close({ stop: HEADER.start + 60_000_000 });
          return path;
        });
        const a = analyzeJournals(paths, {
          collapse,
          ...(window ? { window: { since: HEADER.start, until: null } } : {}),
        });
        const doc = JSON.parse([...jsonChunks(tableReport(a.table, a.journals))].join(''));
        check(doc, 'the report');
      },
    ),
    { numRuns: 60 },
  );
  t.end();
});

t.test('schema: the closed schema rejects an undocumented field and a wrong type', (t) => {
  const a = {
    format: 'conntracker-flows',
    version: 1,
    collapse: '1024',
    journals: [],
    skipped: {},
  };
  const flow = {
    table: 'TCPv4',
    proto: 'tcp',
    src: '10.0.0.1',
    dst: '10.0.0.2',
    sport: 1024,
    dport: 443,
    confirmed: true,
    firstSeen: 1,
    lastSeen: 2,
    hosts: [],
  };
  t.ok(validateClosed({ ...a, flows: [flow] }), 'a valid flow');
  t.notOk(validateClosed({ ...a, flows: [{ ...flow, packets: 3 }] }), 'unknown flow field');
  t.ok(validateOpen({ ...a, flows: [{ ...flow, packets: 3 }] }), 'the published schema is open');
  t.notOk(validateOpen({ ...a, flows: [{ ...flow, dport: '443' }] }), 'a port is an integer');
  t.notOk(validateOpen({ ...a, flows: [{ ...flow, type: 8, code: 0 }] }), 'ports or type/code');
  t.notOk(validateOpen({ ...a, version: 2, flows: [] }), 'version 2 is another schema');
  t.end();
});

t.test('schema: the example in docs/analyze.md is valid', (t) => {
  const doc = readFileSync(join(ROOT, 'docs', 'analyze.md'), 'utf8');
  const example = /## JSON format[\s\S]*?```json\n([\s\S]*?)\n```/.exec(doc)?.[1];
  t.ok(example, 'docs/analyze.md has a JSON example');
  check(JSON.parse(example ?? 'null'), 'the example');
  t.pass('the example is valid');
  t.end();
});
