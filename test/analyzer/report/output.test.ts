// Report output: atomic file replacement, stream backpressure, a reader that went away.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import t from 'tap';
import { writeFileAtomic, writeToStream } from '../../../analyzer/report/output.js';
import { tempDir } from '../fixtures.js';

t.test('output: -o replaces the file whole and leaves no temporary file', async (t) => {
  const dir = tempDir(t, 'out');
  const path = join(dir, 'flows.txt');
  writeFileSync(path, 'old\n');
  writeFileAtomic(path, ['a\n', 'b\n']);
  t.equal(readFileSync(path, 'utf8'), 'a\nb\n');
  t.strictSame(readdirSync(dir), ['flows.txt']);
});

t.test('output: a run failing mid-report leaves the previous file and no temporary', async (t) => {
  const dir = tempDir(t, 'fail');
  const path = join(dir, 'flows.txt');
  writeFileSync(path, 'old\n');
  function* failing() {
    yield 'half a report\n';
    throw new Error('injected failure while rendering');
  }
  t.throws(() => writeFileAtomic(path, failing()), { message: 'injected failure while rendering' });
  t.equal(readFileSync(path, 'utf8'), 'old\n');
  t.strictSame(readdirSync(dir), ['flows.txt']);
});

t.test('output: an unwritable path is a CtError saying what to do', async (t) => {
  const dir = tempDir(t, 'bad');
  t.throws(() => writeFileAtomic(join(dir, 'no', 'such', 'x.txt'), ['x']), {
    name: 'CtError',
    code: 'EOUTPUT',
    message: /^cannot write .*x\.txt: no such directory — create it/,
  });
  mkdirSync(join(dir, 'd'));
  t.throws(() => writeFileAtomic(join(dir, 'd'), ['x']), { name: 'CtError', message: /directory/ });
  t.strictSame(readdirSync(dir), ['d']);
});

t.test('output: a slow stream gets every chunk in order (waits for drain)', async (t) => {
  const got: string[] = [];
  const slow = new Writable({
    highWaterMark: 4,
    write(chunk, _enc, done) {
      got.push(String(chunk));
      setTimeout(done, 1);
    },
  });
  const chunks = Array.from({ length: 50 }, (_, i) => `line ${i}\n`);
  await writeToStream(chunks, slow);
  t.strictSame(got, chunks);
});

t.test(
  'output: EPIPE (reader went away) ends quietly; other stream errors are CtErrors',
  async (t) => {
    const broken = (code: string) =>
      new Writable({
        write(_chunk, _enc, done) {
          done(Object.assign(new Error(`write ${code}`), { code }));
        },
      });
    const many = Array.from({ length: 1000 }, () => 'x'.repeat(1000));
    await t.resolves(writeToStream(many, broken('EPIPE')));
    await t.rejects(writeToStream(many, broken('EIO')), { name: 'CtError', code: 'EOUTPUT' });
    const sink = new PassThrough();
    sink.resume();
    await t.resolves(writeToStream(['ok'], sink));
  },
);
