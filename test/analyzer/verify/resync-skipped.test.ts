// A gap's skipped count reaches what ct-analyze says of gaps: verify's detail and the coverage line.
import { join } from 'node:path';
import t from 'tap';
import { countsText } from '../../../analyzer/core/coverage.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import { verifyJournal } from '../../../analyzer/verify/verify.js';
import { openJournal } from '../../../journal/reader.js';
import { JournalWriter } from '../../../journal/writer.js';
import { FORMATS, gap, HEADER, tcpNew, tempDir } from '../../journal/fixtures.js';

const dir = tempDir(t, 'resync-skipped');

/** One dump that resynchronised two causes (two gaps, one count), a later dump, no dump. */
function write(path: string, format: (typeof FORMATS)[number]): void {
  const w = JournalWriter.create(path, HEADER, { formatVersion: format });
  w.append([tcpNew(0)]);
  const to = HEADER.start + 9_000;
  w.appendGap(gap({ to, resync: 40, skipped: 25, cause: 'ENOBUFS' }));
  w.appendGap(gap({ to, resync: 40, skipped: 25, cause: 'QUEUE' }));
  w.append([tcpNew(1)]);
  w.appendGap(gap({ to: to + 1, resync: 10, skipped: 2 }));
  w.appendGap(gap({ to: to + 2, resync: -1 }));
  w.close({ stop: to + 3 });
}

for (const format of FORMATS) {
  t.test(
    `format ${format}: the dumps' entries left out are counted once per dump and shown by verify and the coverage line`,
    (t) => {
      const path = join(dir, `skipped-${format}.mpk`);
      write(path, format);
      const reader = openJournal(path);
      for (const _ of reader.items()) {
        // read to the end
      }
      t.equal(reader.counts.resyncSkipped, 27, '25 once for the two gaps of one dump, then 2');
      reader.close();
      const v = verifyJournal(path);
      t.equal(v.verdict, 'OK');
      t.match(v.detail, '4 gaps (68 events lost; 27 resync dump entries left out as held already)');
      const [summary] = analyzeJournals([path]).journals;
      t.equal(summary?.coverage.resyncSkipped, 27);
      t.match(
        countsText(summary?.coverage ?? ({} as never)),
        /in 4 gaps; the resync dumps left out 27 entries the journal already held$/,
      );
      t.end();
    },
  );
}

t.test('a journal without skipped counts reads and reports as before', (t) => {
  const path = join(dir, 'plain.mpk');
  const w = JournalWriter.create(path, HEADER);
  w.append([tcpNew(0)]);
  w.appendGap(gap());
  w.close({ stop: HEADER.start + 9_000 });
  t.match(verifyJournal(path).detail, /1 gap \(17 events lost\)/);
  const [summary] = analyzeJournals([path]).journals;
  t.notOk(summary !== undefined && 'resyncSkipped' in summary.coverage, 'no key in the coverage');
  t.notMatch(countsText(summary?.coverage ?? ({} as never)), /left out/);
  t.end();
});
