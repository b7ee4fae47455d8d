// End to end: real `conntrack -E` text captured beside ct-record imports to the same flow table.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ANALYZER, RECORDER, startRecorder } from '../../../samples/record.js';
import { expectedLines, runScenario, stripCounter } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-import-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function analyze(args: string[]): Promise<{ out: string; err: string }> {
  const res = await run([process.execPath, ANALYZER, ...args], { check: false, timeoutMs: 30_000 });
  if (res.code !== 0)
    throw new Error(`ct-analyze ${args.join(' ')}: exit ${res.code}: ${res.stderr}`);
  return { out: res.stdout, err: res.stderr };
}

const flowLines = (text: string) => text.split('\n').filter((l) => FLOW_LINE.test(l));

for (const format of [['-o', 'timestamp,id,extended'], []]) {
  const name = format.length > 0 ? 'conntrack -E -o timestamp,id,extended' : 'conntrack -E';
  t.test(`import: ${name} captured beside ct-record gives the same table`, async (t) => {
    const topo = await createTopology(t, 'lan', { net: format.length > 0 ? 41 : 42 });
    const tag = format.length > 0 ? 'ext' : 'plain';
    const journal = join(dir, `${tag}.recorded.mpk`);
    const capture = join(dir, `${tag}.conntrack.txt`);
    const imported = join(dir, `${tag}.imported.mpk`);

    const rec = await startRecorder(topo, journal);
    const ct = topo.spawn(topo.recordNs, ['conntrack', '-E', ...format]);
    let text = '';
    let ctErr = '';
    ct.stdout?.setEncoding('utf8').on('data', (d: string) => {
      text += d;
    });
    ct.stderr?.setEncoding('utf8').on('data', (d: string) => {
      ctErr += d;
    });
    // conntrack says nothing once subscribed: give it the time ct-record needed to start.
    await new Promise((r) => setTimeout(r, 500));
    const { flows } = await runScenario(topo);
    await new Promise((r) => setTimeout(r, 300));
    rec.child.kill('SIGTERM');
    ct.kill('SIGTERM');
    t.equal(await exitedWithin(rec.child, 20_000), 0, `ct-record exits 0\n${rec.stderr()}`);
    await exitedWithin(ct, 10_000);
    t.match(ctErr, /flow events have been shown/, 'conntrack ended normally and printed its count');
    writeFileSync(capture, text);

    const imp = await run([process.execPath, ANALYZER, 'import', capture, '-o', imported], {
      check: false,
      timeoutMs: 30_000,
    });
    t.equal(imp.code, 0, `import exits 0\n${imp.stderr}`);
    t.notMatch(imp.stderr, /warning/, 'every line of real output is read');
    t.match(imp.stderr, new RegExp(`imported \\d+ entries \\(conntrack -E\\) from ${capture}`));

    // The same capture through a shell pipe: standard input is copied aside, then read twice.
    const piped = join(dir, `${tag}.piped.mpk`);
    const pipe = await run(
      [
        'sh',
        '-c',
        'cat "$0" | "$1" "$2" import - -o "$3"',
        capture,
        process.execPath,
        ANALYZER,
        piped,
      ],
      { check: false, timeoutMs: 30_000 },
    );
    t.equal(pipe.code, 0, `import - exits 0\n${pipe.stderr}`);
    t.match(pipe.stderr, /imported \d+ entries \(conntrack -E\) from \(standard input\)/);

    const want = expectedLines(flows);
    const fromImport = flowLines((await analyze([imported])).out);
    const fromRecord = flowLines((await analyze([journal])).out);
    t.strictSame(fromImport.map(stripCounter), want, 'the imported table is the scenario’s flows');
    t.strictSame(fromImport, fromRecord, 'the imported table equals the ct-record table exactly');
    t.strictSame(flowLines((await analyze([piped])).out), fromImport, 'and so does the piped one');
    const none = (f: string) => analyze([f, '--collapse', 'none']).then((r) => flowLines(r.out));
    t.strictSame(await none(imported), await none(journal), 'also with the real source ports');

    const json = JSON.parse((await analyze([imported, '--format', 'json'])).out) as {
      journals: { coverage: { events: number } }[];
    };
    t.ok((json.journals[0]?.coverage.events ?? 0) > flows.length, 'every event was imported');

    if (format.length > 0) {
      // Timestamps came along: a window after the capture keeps no flow, one around it all.
      const late = await analyze(['--since', '0s', imported]);
      t.strictSame(flowLines(late.out), [], '--since now: nothing left');
      t.match(late.out, /# window: .* 0 of \d+ events inside/);
      const around = await analyze(['--since', '10m', '--until', '0s', imported]);
      t.strictSame(flowLines(around.out), fromImport, 'the last ten minutes hold every flow');
    }
  });
}
