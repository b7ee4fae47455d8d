// Crash safety on the real kernel: kill -9 mid-flood, and a disk that fills up mid-recording.
import '../../helpers/kernel.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openJournal } from '../../../journal/reader.js';
import { ANALYZER, startRecorder } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { buildFlood, flood } from '../../helpers/flood.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

const dir = mkdtempSync(join(tmpdir(), `ct-crash-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const floodBin = buildFlood(dir);

/** Reads every complete frame the way ct-analyze does; counts events and the torn tail. */
function readBack(path: string) {
  const r = openJournal(path);
  let events = 0;
  for (const b of r.batches()) events += b.length;
  const out = { events, trailer: r.trailer, ignored: r.tail?.ignoredBytes ?? 0 };
  r.close();
  return out;
}

t.test(
  'kill -9 mid-flood: every complete frame analyzes, the report says it did not end',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const journal = join(dir, 'killed.mpk');
    const rec = await startRecorder(topo, journal, ['-e', 'NEW']);
    const flooding = flood(topo, floodBin, 200_000, 20);
    await new Promise((r) => setTimeout(r, 700));
    rec.child.kill('SIGKILL');
    t.equal(await exitedWithin(rec.child, 10_000), 'SIGKILL', 'the recorder died at once');
    await flooding;

    const back = readBack(journal);
    t.equal(back.trailer, undefined, 'no trailer: the recording was cut off');
    t.ok(back.events > 0, `the frames written before the kill hold ${back.events} events`);
    const res = await run([process.execPath, ANALYZER, journal], {
      check: false,
      timeoutMs: 60_000,
    });
    t.equal(res.code, 0, `ct-analyze exits 0 on a killed recording\n${res.stderr}`);
    t.match(res.stdout, /# WARNING: the recording did not end cleanly/);
    t.match(res.stdout, /\n UDPv4 \[ +0\] /, 'the flows recorded before the kill are listed');
    t.notMatch(res.stderr, /\n +at /, 'no stack trace');
    const v = await run([process.execPath, ANALYZER, 'verify', journal], { check: false });
    t.equal(v.code, 1, 'verify: not OK, so exit 1');
    t.match(v.stdout, /: INCOMPLETE — /, `verify says the journal is incomplete: ${v.stdout}`);
  },
);

t.test(
  'a full disk stops the recording with a clear error and a journal that still reads',
  async (t) => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'ct-test-full', mnt]);
    t.teardown(() => execFileSync('umount', ['-l', mnt]));
    const topo = await createTopology(t, 'lan');
    const journal = join(mnt, 'full.mpk');
    const rec = await startRecorder(topo, journal, ['-e', 'NEW']);
    // About 30 bytes per event: 50,000 flows need far more than 256 KiB.
    await flood(topo, floodBin, 50_000, 20);
    const code = await exitedWithin(rec.child, 20_000);
    t.equal(code, 1, `ct-record stops by itself with exit 1\n${rec.stderr()}`);
    t.match(rec.stderr(), /no space left on device/i, 'it says what happened');
    t.notMatch(rec.stderr(), /\n +at /, 'no stack trace');

    const back = readBack(journal);
    t.ok(back.events > 1000, `the journal keeps what fitted: ${back.events} events`);
    t.equal(back.ignored, 0, 'it ends on a whole frame: nothing torn');
    const res = await run([process.execPath, ANALYZER, journal], {
      check: false,
      timeoutMs: 60_000,
    });
    t.equal(res.code, 0, `ct-analyze reads it\n${res.stderr}`);
    t.match(res.stdout, /# WARNING: the recording did not end cleanly/);
    const v = await run([process.execPath, ANALYZER, 'verify', journal], { check: false });
    t.equal(v.code, 1, 'verify: not OK, so exit 1');
    t.match(v.stdout, /: INCOMPLETE — /, `verify says the journal is incomplete: ${v.stdout}`);
  },
);
