// The record layout is pinned twice: C++ static_asserts, and this comparison with native/layout.ts.
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EventType } from '../../journal/event.js';
import { addonPath, checkAddon, rawAddonForTests, startCapture } from '../../native/index.js';
import { FIELDS, Flag, RECORD_SIZE, RecordType } from '../../native/layout.js';

t.test(
  'layout: the addon reports exactly the offsets, sizes and codes of native/layout.ts',
  async (t) => {
    const native = rawAddonForTests().layout();
    t.equal(native.recordSize, RECORD_SIZE, 'record size');
    t.same(native.fields, FIELDS, 'every field at the same offset with the same size');
    t.same(Object.keys(native.fields), Object.keys(FIELDS), 'the same fields in the same order');
    t.same(native.flags, Flag, 'flag bits');
    t.same(native.eventTypes, RecordType, 'event type codes');
    t.same(RecordType, EventType, 'record type codes are the journal event types');
    t.equal(native.batchRecords, 1024, 'a batch holds up to 1,024 records');
    t.equal(native.batchMillis, 20, 'a partial batch waits at most 20 ms');
  },
);

t.test('layout: fields tile the record with no gap and no overlap', async (t) => {
  const fields = Object.values(FIELDS).sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const f of fields) {
    t.equal(f.offset, end, `field at ${f.offset} starts where the previous one ends`);
    end = f.offset + f.size;
  }
  t.equal(end, RECORD_SIZE, 'the last field ends at RECORD_SIZE');
});

t.test('checkAddon: a missing or broken addon is ENOADDON with the fix', async (t) => {
  t.match(
    addonPath(),
    /build\/Release\/ct_native\.node$/,
    'the addon is found from the package root',
  );
  const missing = join(tmpdir(), `ct-native-missing-${process.pid}.node`);
  t.throws(
    () => checkAddon(missing),
    {
      name: 'CtError',
      code: 'ENOADDON',
      message:
        /^the conntrack addon is not built \(.*does not exist\): install g\+\+, make, python3 and linux-libc-dev, then run `npm rebuild conntracker` \(or `npm ci`\)$/,
    },
    'missing file',
  );
  const broken = join(tmpdir(), `ct-native-broken-${process.pid}.node`);
  writeFileSync(broken, 'not an ELF file');
  t.teardown(() => rmSync(broken, { force: true }));
  t.throws(
    () => checkAddon(broken),
    { code: 'ENOADDON', message: /invalid ELF header|not built/ },
    'broken file',
  );
});

t.test('startCapture: bad options are usage errors before any socket is opened', async (t) => {
  const noop = () => {};
  const bad: [string, object, RegExp][] = [
    ['no event', { events: { new: false, update: false, destroy: false } }, /at least one/],
    ['non-boolean event', { events: { new: 1, update: true, destroy: true } }, /events\.new/],
    ['tiny buffer', { bufferSize: 1000 }, /out of range/],
    ['fractional buffer', { bufferSize: 65536.5 }, /out of range/],
  ];
  for (const [what, opts, message] of bad) {
    t.throws(
      () => startCapture(opts as never, noop, noop),
      { name: 'CtError', code: 'EUSAGE', exit: 2, message },
      what,
    );
  }
});
