// ct-analyze check's loader without root or nft: nft's JSON passed through, every refusal one clear error, and child runs bounded.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadRuleset } from '../../../analyzer/check/load.js';
import {
  blankRefused,
  nonFilterRefusals,
  parseNftErrors,
  scanDevices,
} from '../../../analyzer/check/load-nft-errors.js';
import {
  prepareSaved,
  quoteComments,
  restoreIcmpv6,
  savedRules,
  spliceUntranslated,
  untranslatedRules,
} from '../../../analyzer/check/load-saved.js';
import { detectFormat } from '../../../analyzer/check/nft-json.js';
import { CtError, Exit } from '../../../common/errors.js';
import { tempDir } from '../fixtures.js';

/** `nft -j list ruleset` of nftables' own examples/workstation.nft (nft 1.0.6). */
const WORKSTATION = join(import.meta.dirname, 'workstation.nft.json');
const NFT_TEXT = 'table inet f {\n  chain input { type filter hook input priority 0; }\n}\n';
const SAVE_TEXT = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n';

function write(dir: string, name: string, text: string): string {
  const at = join(dir, name);
  writeFileSync(at, text);
  return at;
}

/** A directory of stand-in tools: each a shell script, so no root and no nft are needed. */
function fakeTools(dir: string, scripts: Record<string, string>): string {
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function refusal(p: Promise<unknown>): Promise<CtError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CtError) return err;
    throw err;
  }
  throw new Error('the load did not fail');
}

t.test(
  'load: nft -j list ruleset JSON is returned as it is, with no tool on the path',
  async (t) => {
    const loaded = await loadRuleset(WORKSTATION, { toolPath: '' });
    t.strictSame(loaded.json, JSON.parse(readFileSync(WORKSTATION, 'utf8')));
    t.equal(loaded.format, 'nft-json');
    t.equal(loaded.via, 'json');
    t.equal(loaded.runs, 0, 'no process was spawned');
  },
);

t.test('load: a file that is not JSON, or not the JSON nft lists, is a usage error', async (t) => {
  const dir = tempDir(t, 'load-json');
  const cases: [string, string, RegExp][] = [
    ['broken.json', '{"nftables": [', /not valid JSON/],
    ['other.json', '{"rules": []}', /no top-level "nftables" array/],
    ['commands.json', '{"nftables": [{"add": {"table": {"family": "ip", "name": "t"}}}]}', /"add"/],
    ['future.json', '{"nftables": [{"metainfo": {"json_schema_version": 2}}]}', /version 2/],
    ['rule.json', '{"nftables": [{"rule": {"family": "ip", "table": "t"}}]}', /no chain/],
  ];
  for (const [name, text, why] of cases) {
    const err = await refusal(loadRuleset(write(dir, name, text), { toolPath: '' }));
    t.equal(err.code, 'ERULESYNTAX', name);
    t.equal(err.exit, Exit.USAGE, `${name}: exit 2`);
    t.match(err.message, why, `${name}: says what is wrong`);
    t.match(err.message, /nft -j list ruleset/, `${name}: says what to pass instead`);
    t.match(err.message, name, `${name}: names the file`);
  }
});

t.test('load: no nft on the path is one error naming the package and the JSON way', async (t) => {
  const dir = tempDir(t, 'load-nonft');
  const empty = tempDir(t, 'load-empty');
  const err = await refusal(loadRuleset(write(dir, 'r.nft', NFT_TEXT), { toolPath: empty }));
  t.equal(err.code, 'ENOLOADER');
  t.equal(err.exit, Exit.RUNTIME);
  t.match(err.message, /needs nft, unshare/);
  t.match(err.message, /install the nftables and util-linux packages/);
  t.match(err.message, /nft -j list ruleset > ruleset\.json/);
  const saved = await refusal(loadRuleset(write(dir, 'r.rules', SAVE_TEXT), { toolPath: empty }));
  t.equal(saved.code, 'ENOLOADER');
  t.match(
    saved.message,
    /iptables-nft-restore/,
    'an iptables-save file also needs the restore tool',
  );
  t.match(saved.message, /nftables and util-linux and iptables packages/);
});

t.test(
  'load: a namespace the kernel refuses is the same one error, saying how to allow it',
  async (t) => {
    const dir = tempDir(t, 'load-nons');
    const tools = fakeTools(tempDir(t, 'load-nons-bin'), {
      nft: 'exit 0',
      unshare: 'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1',
    });
    const file = write(dir, 'r.nft', NFT_TEXT);
    const err = await refusal(loadRuleset(file, { toolPath: tools, privileged: false }));
    t.equal(err.code, 'ENOLOADER');
    t.match(err.message, /cannot create a user and network namespace/);
    t.match(err.message, /Operation not permitted/);
    t.match(err.message, /user\.max_user_namespaces/);
    t.match(err.message, /nft -j list ruleset/);
    const root = await refusal(loadRuleset(file, { toolPath: tools, privileged: true }));
    t.match(root.message, /cannot create a network namespace .* CAP_SYS_ADMIN/);
  },
);

t.test('load: nft syntax errors come back as a usage error with their lines', async (t) => {
  const dir = tempDir(t, 'load-syntax');
  // unshare stands in by running what follows `--`; nft prints what nft 1.0.6 prints.
  const tools = fakeTools(tempDir(t, 'load-syntax-bin'), {
    unshare: 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"',
    nft: [
      'for a; do f=$a; done',
      'echo "$f:2:9-11: Error: syntax error, unexpected fwd, expecting string" >&2',
      'echo "  chain fwd {" >&2',
      'echo "        ^^^" >&2',
      'exit 1',
    ].join('\n'),
  });
  const file = write(dir, 'bad.nft', 'table ip t {\n  chain fwd {\n  }\n}\n');
  const err = await refusal(loadRuleset(file, { toolPath: tools }));
  t.equal(err.code, 'ERULESYNTAX');
  t.equal(err.exit, Exit.USAGE);
  t.match(err.message, `${file}:2:9-11: Error: syntax error, unexpected fwd`);
  t.match(err.message, /chain fwd \{\n\s+\^\^\^/, "nft's own pointer is kept");
});

t.test('load: a run past its timeout is stopped with its children, and says so', async (t) => {
  const dir = tempDir(t, 'load-slow');
  const pidFile = join(dir, 'child.pid');
  const tools = fakeTools(tempDir(t, 'load-slow-bin'), {
    nft: 'exit 0',
    // A grandchild that would outlive a kill of unshare alone.
    unshare: `sleep 30 & echo $! > '${pidFile}'; wait`,
  });
  const started = Date.now();
  const err = await refusal(
    loadRuleset(write(dir, 'r.nft', NFT_TEXT), { toolPath: tools, timeoutMs: 300 }),
  );
  t.equal(err.code, 'ERULELOAD');
  t.match(err.message, /took over 300 ms and was stopped/);
  t.ok(Date.now() - started < 10_000, 'it did not wait for the sleep');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  // Killed, it may linger as a zombie until whoever adopted it reaps it: that is not running.
  t.notOk(running(pid), 'the grandchild is gone too');
});

t.test('load: output past the limit stops the run instead of filling memory', async (t) => {
  const dir = tempDir(t, 'load-big');
  const tools = fakeTools(tempDir(t, 'load-big-bin'), {
    nft: 'exit 0',
    unshare: 'yes "{}"',
  });
  const err = await refusal(
    loadRuleset(write(dir, 'r.nft', NFT_TEXT), { toolPath: tools, maxOutputBytes: 100_000 }),
  );
  t.equal(err.code, 'ERULELOAD');
  t.match(err.message, /over 100000 bytes/);
});

t.test('load: the format is told from the text, nft having the last word', (t) => {
  t.equal(detectFormat('  {"nftables": []}'), 'nft-json');
  t.equal(detectFormat(NFT_TEXT), 'nft');
  t.equal(detectFormat('#!/usr/sbin/nft -f\nflush ruleset\ninclude "x.nft"\n'), 'nft');
  t.equal(detectFormat(`# Generated by iptables-save v1.8.9\n${SAVE_TEXT}`), 'iptables');
  t.equal(detectFormat(SAVE_TEXT), 'iptables');
  t.equal(detectFormat(`# Generated by ip6tables-save v1.8.9\n${SAVE_TEXT}`), 'ip6tables');
  t.equal(
    detectFormat('*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n'),
    'ip6tables',
  );
  t.equal(detectFormat('*filter\n-A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n'), 'ip6tables');
  t.end();
});

t.test('load: device names are found where a load needs them to exist', (t) => {
  const text = [
    'define wan = ppp0',
    'table netdev n { chain c { type filter hook ingress device "eth9" priority 0; } }',
    'table inet f {',
    '  flowtable ft { hook ingress priority 0; devices = { eth7, "eth8" }; }',
    '  chain c { iif "lan0" accept; oif wan1 drop; iifname "notneeded" accept',
    '    iif { eth0, eth1 } accept; iif $wan accept # iif commented',
    '  }',
    '}',
  ].join('\n');
  t.strictSame(scanDevices(text), ['eth9', 'lan0', 'wan1', 'eth7', 'eth8']);
  t.strictSame(scanDevices(text, true), [
    'ppp0',
    'eth0',
    'eth1',
    'eth9',
    'lan0',
    'wan1',
    'eth7',
    'eth8',
  ]);
  t.end();
});

t.test("load: nft's errors are read with their spans, tabs and all", (t) => {
  const stderr = [
    '/r/sets.nft:9:19-22: Error: Interface does not exist',
    'define int_if2\t = eth1',
    '              \t   ^^^^',
    '/r/ft.nft:2:13-14: Error: Could not process rule: No such file or directory',
    '  flowtable ft { hook ingress priority 0; devices = { eth7 }; }',
    '            ^^',
  ].join('\n');
  const [device, flowtable] = parseNftErrors(stderr);
  t.equal(device?.missingDevice, 'eth1');
  t.equal(device?.line, 9);
  t.equal(flowtable?.span, 'ft');
  t.equal(flowtable?.prefix, '  flowtable ');
  t.equal(flowtable?.missingDevice, undefined);
  t.end();
});

t.test('load: a refused flowtable and ct helper are blanked with their uses, lines kept', (t) => {
  const text = [
    'table inet f {',
    '  flowtable ft {',
    '    hook ingress priority 0; devices = { eth7 }',
    '  }',
    '  ct helper rtsp { type "rtsp" protocol tcp; }',
    '  chain c { ip protocol tcp flow offload @ft; tcp dport 554 ct helper set "rtsp" accept; }',
    '}',
  ].join('\n');
  const enoent = 'Error: Could not process rule: No such file or directory';
  const stderr = [
    `/r.nft:2:13-14: ${enoent}`,
    '  flowtable ft {',
    '            ^^',
    `/r.nft:5:13-16: ${enoent}`,
    '  ct helper rtsp { type "rtsp" protocol tcp; }',
    '            ^^^^',
    `/r.nft:6:29-44: ${enoent}`,
    '  chain c { ip protocol tcp flow offload @ft; tcp dport 554 ct helper set "rtsp" accept; }',
    '                            ^^^^^^^^^^^^^^^^',
    `/r.nft:6:75-80: ${enoent}`,
    '  chain c { ip protocol tcp flow offload @ft; tcp dport 554 ct helper set "rtsp" accept; }',
    '                                                                          ^^^^^^',
    '/other.nft:1:1-3: Error: Could not process rule: No such file or directory',
    'foo',
    '^^^',
  ].join('\n');
  const errors = parseNftErrors(stderr);
  const refused = nonFilterRefusals(errors, '/r.nft');
  t.equal(refused.length, 4, 'a refusal in another file is not blanked here');
  const notes: string[] = [];
  const out = blankRefused(text, refused, notes);
  t.equal(out.split('\n').length, text.split('\n').length, 'every line is still there');
  t.equal(out.length, text.length);
  t.notMatch(out, /flowtable|helper|flow offload/);
  t.match(out, /chain c \{ ip protocol tcp\s+; tcp dport 554\s+accept; \}/);
  t.equal(notes.length, 4);
  t.end();
});

t.test(
  'load: refused secmark objects are blanked with the elements and statements that name them, in one note',
  (t) => {
    // The shapes nftables' secmark example uses, and nft 1.0.6's errors for them without SELinux.
    const text = [
      'table inet x {',
      '  secmark ssh_server {',
      '    "system_u:object_r:ssh_server_packet_t:s0"',
      '  }',
      '  counter c1 { }',
      '  map m1 {',
      '    type inet_service : secmark',
      '    elements = {',
      '      22 : "ssh_server",',
      '      23 : "ssh_server" }',
      '  }',
      '  map m2 { type inet_service : counter; elements = { 22 : "c1" } }',
      '  chain y {',
      '    type filter hook input priority 0;',
      '    meta secmark set tcp dport map { 22 : "ssh_server" }',
      '    ct state new meta secmark set "ssh_server" counter accept',
      '    ct state new meta secmark set tcp dport map @m1',
      '    ct secmark set meta secmark',
      '  }',
      '}',
      'add element inet x m1 { 24 : "ssh_server" }',
      '',
    ].join('\n');
    const lines = text.split('\n');
    const enoent = 'Error: Could not process rule: No such file or directory';
    /** nft's three lines for `span` on 1-based `line`. */
    const err = (line: number, span: string) => {
      const source = lines[line - 1] as string;
      const from = source.indexOf(span) + 1;
      const caret = `${' '.repeat(from - 1)}${'^'.repeat(span.length)}`;
      return [`/r.nft:${line}:${from}-${from + span.length - 1}: ${enoent}`, source, caret];
    };
    const stderr = [
      ...err(2, 'ssh_server'),
      ...err(9, '22'),
      ...err(15, '22'),
      ...err(16, '"ssh_server"'),
      ...err(21, '24'),
    ].join('\n');
    const refused = nonFilterRefusals(parseNftErrors(stderr), '/r.nft');
    t.equal(refused.length, 5);
    const notes: string[] = [];
    const out = blankRefused(text, refused, notes);
    t.equal(out.length, text.length, 'blanked, not cut');
    t.equal(out.split('\n').length, lines.length, 'every line is still there');
    const got = out.split('\n');
    t.notMatch(out, /ssh_server|secmark ssh|elements = \{\s*22 : "ssh/);
    t.match(got[6], /type inet_service : secmark/, 'the map stays, without its elements');
    t.match(got[11], /elements = \{ 22 : "c1" \}/, "a counter map's elements stay");
    t.match(got[14], /^\s*$/, 'the anonymous map statement goes whole');
    t.match(got[15], /^ {4}ct state new\s+counter accept$/, 'the rest of the rule stays');
    t.match(got[16], /meta secmark set tcp dport map @m1/, 'what nft took is kept');
    t.match(got[17], /ct secmark set meta secmark/);
    t.match(got[20], /^\s*$/, 'the add element command goes whole');
    t.equal(notes.length, 1, 'one note for all of them');
    t.match(
      notes[0],
      /^secmark ssh_server \(line 2\) and what sets secmark labels from them \(lines 9, 15, 16, 21\) left out: the kernel refused the objects \(No such file or directory\): no SELinux policy loaded here knows their contexts/,
    );
    const counter = err(12, '22').join('\n');
    t.strictSame(
      nonFilterRefusals(parseNftErrors(counter), '/r.nft'),
      [],
      'an element is blanked only when it names an object refused in the same run',
    );
    t.end();
  },
);

t.test('load: nfacct matches are blanked with their line kept, and each is said', (t) => {
  const text = [
    '*filter',
    ':KUBE-FORWARD - [0:0]',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP',
    '-A KUBE-FORWARD -m comment --comment "-m nfacct --nfacct-name x" -j ACCEPT',
    'COMMIT',
    '',
  ].join('\n');
  const prepared = prepareSaved(text);
  const lines = prepared.text.split('\n');
  t.equal(lines.length, text.split('\n').length, 'every line is still there');
  t.match(lines[2], /^-A KUBE-FORWARD -m conntrack --ctstate INVALID\s+-j DROP$/);
  t.notMatch(lines[2], /nfacct/);
  t.equal(prepared.notLoaded.length, 1, 'one note per match');
  t.match(
    lines[3],
    /--comment "-m nfacct --nfacct-name x"/,
    'words inside a comment are not a match',
  );
  t.match(
    prepared.notLoaded[0],
    /^line 3: `-m nfacct --nfacct-name ct_state_invalid_dropped_pkts` left out: nfacct counts packets, it does not filter/,
  );
  t.strictSame(
    prepareSaved('*filter\n-A INPUT -j ACCEPT\nCOMMIT\n').notLoaded,
    [],
    'nothing to say',
  );
  t.end();
});

t.test(
  'load: `-m tcp` after `-p tcp` is dropped for the translator, which loses the protocol of an option-less one',
  (t) => {
    const text = [
      '*nat',
      '-A KUBE-SEP-X -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
      '-A X -p udp -m udp --dport 53 -j ACCEPT',
      '-A X ! -p tcp -m tcp -j ACCEPT',
      '-A X -p udp -m tcp --dport 1 -j ACCEPT',
      ':CHAIN-m-tcp - [0:0]',
      'COMMIT',
    ].join('\n');
    const out = prepareSaved(text).forTranslation.split('\n');
    t.match(out[1], /--comment ns1\/svc1:p80\s+-p tcp -j DNAT/);
    t.notMatch(out[1], /-m tcp/);
    t.match(out[2], /^-A X -p udp\s+--dport 53 -j ACCEPT$/);
    t.match(out[3], /-m tcp/, 'a negated protocol keeps its match');
    t.match(out[4], /-m tcp/, 'another protocol keeps its match');
    t.equal(out[5], ':CHAIN-m-tcp - [0:0]', 'only rules are touched');
    t.equal(
      prepareSaved(text).text,
      text,
      'what iptables-nft-restore reads without the option is the same',
    );
    t.end();
  },
);

/** ufw's `limit` as iptables-save prints it, between two rules that translate. */
const UFW_LIMIT = [
  '*filter',
  ':INPUT DROP [0:0]',
  ':ufw-user-input - [0:0]',
  '-A INPUT -j ufw-user-input',
  '-A ufw-user-input -p tcp -m tcp --dport 80 -j ACCEPT',
  '-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
  '-A ufw-user-input -m comment --comment "a \\"quoted\\"  comment" -p udp -j ACCEPT',
  'COMMIT',
  '',
].join('\n');

t.test('load: the rules the translator leaves as comments are found in the file, in order', (t) => {
  const rules = savedRules(UFW_LIMIT);
  t.strictSame(
    rules.map((r) => [r.table, r.chain, r.line]),
    [
      ['filter', 'INPUT', 4],
      ['filter', 'ufw-user-input', 5],
      ['filter', 'ufw-user-input', 6],
      ['filter', 'ufw-user-input', 7],
    ],
  );
  // iptables-restore-translate 1.8.9 prints the rule without its quotes, with a trailing space.
  const translated = [
    'add rule ip filter INPUT counter jump ufw-user-input',
    'add rule ip filter ufw-user-input tcp dport 80 counter accept',
    '# -t filter -A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource ',
    '# -t filter -A ufw-user-input -m comment --comment a \\quoted\\ comment -p udp -j ACCEPT ',
  ].join('\n');
  t.strictSame(
    untranslatedRules(translated, rules)?.map((r) => r.line),
    [6, 7],
  );
  t.equal(
    untranslatedRules('# -t nat -A ufw-user-input -j ACCEPT ', rules),
    undefined,
    'a comment no rule of its table matches: undefined, not a guess',
  );
  t.strictSame(untranslatedRules('add rule ip filter INPUT accept', rules), []);
  t.end();
});

const rule = (chain: string, handle: number, expr: unknown[]) => ({
  rule: { family: 'ip', table: 'filter', chain, handle, expr },
});

t.test(
  'load: an untranslated rule is spliced in at its place, from the iptables-nft ruleset',
  (t) => {
    const rules = savedRules(UFW_LIMIT);
    const [jump, http, limit, udp] = rules;
    const native = {
      nftables: [
        { table: { family: 'ip', name: 'filter', handle: 1 } },
        { chain: { family: 'ip', table: 'filter', name: 'INPUT', handle: 1 } },
        { chain: { family: 'ip', table: 'filter', name: 'ufw-user-input', handle: 2 } },
        rule('INPUT', 3, [{ jump: { target: 'ufw-user-input' } }]),
        rule('ufw-user-input', 4, [{ accept: null }]),
      ],
    };
    const restored = {
      nftables: [
        { table: { family: 'ip', name: 'filter', handle: 1 } },
        rule('INPUT', 5, [{ xt: { type: 'target', name: 'x' } }]),
        rule('ufw-user-input', 6, [{ xt: { type: 'match', name: 'tcp' } }]),
        rule('ufw-user-input', 7, [{ xt: { type: 'match', name: 'recent' } }]),
        rule('ufw-user-input', 8, [{ xt: { type: 'match', name: 'comment' } }]),
      ],
    };
    const spliced = spliceUntranslated(
      native,
      restored,
      rules,
      [limit, udp].filter((r) => r !== undefined),
    );
    const listed = spliced?.nftables.flatMap((o) =>
      'rule' in o ? [o.rule as Record<string, unknown>] : [],
    );
    t.strictSame(
      listed?.map((r) => [r.chain, r.handle, JSON.stringify(r.expr)]),
      [
        ['INPUT', 3, '[{"jump":{"target":"ufw-user-input"}}]'],
        ['ufw-user-input', 4, '[{"accept":null}]'],
        ['ufw-user-input', undefined, '[{"xt":{"type":"match","name":"recent"}}]'],
        ['ufw-user-input', undefined, '[{"xt":{"type":"match","name":"comment"}}]'],
      ],
      'the translated rules where they were, the others from iptables-nft, without their handles',
    );
    t.equal(spliced?.nftables.length, 7, 'the table and both chains kept');
    t.ok(jump && http);
    // iptables-nft made one rule fewer than the file has: they do not line up, so no guess.
    const short = { nftables: restored.nftables.slice(0, 4) };
    t.equal(
      spliceUntranslated(
        native,
        short,
        rules,
        [limit, udp].filter((r) => r !== undefined),
      ),
      undefined,
    );
    t.end();
  },
);

t.test(
  'load: a numeric ICMPv6 type, which the translator cannot name, is taken out and put back in the translated rule',
  (t) => {
    const text = [
      '*filter',
      '-A ufw6-before-input -p ipv6-icmp -m icmp6 --icmpv6-type 141 -m hl --hl-eq 255 -j ACCEPT',
      '-A ufw6-before-input -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 1/3 -j ACCEPT',
      '-A X -p ipv6-icmp -m icmp6 ! --icmpv6-type 141 -j DROP',
      '-A X -p ipv6-icmp -m icmp6 --icmpv6-type 141 -m comment --comment "own" -j DROP',
      'COMMIT',
    ].join('\n');
    const prepared = prepareSaved(text);
    const out = prepared.forTranslation.split('\n');
    t.equal(
      out[1],
      '-A ufw6-before-input -p ipv6-icmp -m hl --hl-eq 255 -j ACCEPT -m comment --comment ct-analyze-icmpv6-2',
    );
    t.equal(
      out[2],
      '-A ufw6-before-input -s fe80::/10 -p ipv6-icmp -j ACCEPT -m comment --comment ct-analyze-icmpv6-3',
    );
    t.equal(out[3], text.split('\n')[3], 'a negated type stays (and stays xt)');
    t.equal(out[4], text.split('\n')[4], 'a rule with its own comment stays');
    t.equal(prepared.forRestore, text, 'iptables-nft-restore reads the rules unmarked');
    t.strictSame(
      [...prepared.icmpv6],
      [
        ['ct-analyze-icmpv6-2', 'icmpv6 type 141'],
        ['ct-analyze-icmpv6-3', 'icmpv6 type 1 icmpv6 code 3'],
      ],
    );
    // What ip6tables-restore-translate 1.8.9 prints for the two marked rules.
    const translated = [
      'add rule ip6 filter ufw6-before-input meta l4proto ipv6-icmp ip6 hoplimit 255 counter accept comment "ct-analyze-icmpv6-2"',
      'add rule ip6 filter ufw6-before-input ip6 saddr fe80::/10 meta l4proto ipv6-icmp counter accept comment "ct-analyze-icmpv6-3"',
      'add rule ip6 filter X counter accept comment "ct-analyze-icmpv6-9"',
    ].join('\n');
    t.strictSame(restoreIcmpv6(translated, prepared.icmpv6).split('\n'), [
      'add rule ip6 filter ufw6-before-input icmpv6 type 141 ip6 hoplimit 255 counter accept',
      'add rule ip6 filter ufw6-before-input icmpv6 type 1 icmpv6 code 3 ip6 saddr fe80::/10 meta l4proto ipv6-icmp counter accept',
      'add rule ip6 filter X counter accept comment "ct-analyze-icmpv6-9"',
    ]);
    t.end();
  },
);

t.test(
  'load: a translation that does not line up with the file is not guessed at: iptables-nft-restore whole, run once',
  async (t) => {
    const dir = tempDir(t, 'load-splice');
    const bin = tempDir(t, 'load-splice-bin');
    const state = join(bin, 'loaded');
    const restores = join(bin, 'restores');
    const table = '{"table":{"family":"ip","name":"filter","handle":1}}';
    const chain = '{"chain":{"family":"ip","table":"filter","name":"INPUT","handle":1}}';
    const xt = (h: number) =>
      `{"rule":{"family":"ip","table":"filter","chain":"INPUT","handle":${h},"expr":[{"xt":{"type":"match","name":"recent"}}]}}`;
    const tools = fakeTools(bin, {
      unshare: 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"',
      // One rule left as a comment, and the other one missing: they cannot line up with the file.
      'iptables-restore-translate': [
        "echo 'add table ip filter'",
        "echo 'add chain ip filter INPUT { type filter hook input priority 0; }'",
        "echo '# -t filter -A INPUT -p tcp --dport 22 -m recent --name ssh --rcheck -j DROP '",
      ].join('\n'),
      'iptables-nft-restore': `cat >/dev/null; echo restore > '${state}'; echo run >> '${restores}'`,
      nft: [
        `if [ "$1" = "-f" ]; then echo nft > '${state}'; exit 0; fi`,
        `if [ "$(cat '${state}')" = nft ]; then echo '{"nftables":[${table},${chain}]}'; else echo '{"nftables":[${table},${chain},${xt(2)},${xt(3)}]}'; fi`,
      ].join('\n'),
    });
    const file = write(
      dir,
      'r.rules',
      '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -m recent --name ssh --rcheck -j DROP\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n',
    );
    const loaded = await loadRuleset(file, { toolPath: tools, privileged: true });
    t.equal(loaded.via, 'iptables-nft-restore');
    t.equal(
      loaded.json.nftables.filter((o) => 'rule' in o).length,
      2,
      'every rule, as iptables-nft loaded it',
    );
    t.equal(loaded.xtRules, undefined);
    t.equal(readFileSync(restores, 'utf8'), 'run\n', 'iptables-nft-restore ran once');
    t.equal(loaded.runs, 3, 'the translation, nft in a namespace, iptables-nft-restore in one');
  },
);

t.test(
  "check's loader: a comment's quotes, which iptables-restore-translate copies through bare, become single quotes nft accepts",
  async (t) => {
    const translated = [
      'add rule ip filter INPUT ip saddr 10.0.2.0/24 tcp dport { 80, 443 } counter accept comment "web, "quoted""',
      'add rule ip filter INPUT tcp dport 22 counter accept comment "ssh"',
      'add rule ip filter INPUT counter drop',
    ].join('\n');
    t.equal(
      quoteComments(translated),
      [
        'add rule ip filter INPUT ip saddr 10.0.2.0/24 tcp dport { 80, 443 } counter accept comment "web, \'quoted\'"',
        'add rule ip filter INPUT tcp dport 22 counter accept comment "ssh"',
        'add rule ip filter INPUT counter drop',
      ].join('\n'),
    );
  },
);

t.test(
  'load: a --noflush file jumping from built-in chains it does not declare gets them declared for the translator, its rules keeping their lines',
  async (t) => {
    const text = [
      '# written for iptables-restore --noflush',
      '*filter',
      ':CT-INPUT - [0:0]',
      '-A CT-INPUT -p tcp --dport 22 -j ACCEPT',
      '-A INPUT -j CT-INPUT',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      '-A PREROUTING -p tcp --dport 2222 -j REDIRECT --to-ports 22',
      'COMMIT',
      '',
    ].join('\n');
    const p = prepareSaved(text);
    const lines = p.forTranslation.split('\n');
    t.same(lines.slice(1, 4), ['*filter', ':INPUT ACCEPT [0:0]', ':CT-INPUT - [0:0]']);
    t.notOk(lines.includes(':FORWARD ACCEPT [0:0]'), 'only the chains used');
    t.equal(
      lines.filter((l) => l === ':PREROUTING ACCEPT [0:0]').length,
      1,
      'a declared one stays one',
    );
    t.equal(p.forRestore, text, 'iptables-nft-restore reads the file as it is');
    t.same(
      savedRules(p.forTranslation, p.fileLine).map((r) => [r.chain, r.line]),
      [
        ['CT-INPUT', 4],
        ['INPUT', 5],
        ['PREROUTING', 9],
      ],
      'rules keep the lines of the file',
    );
  },
);

t.test(
  'load: `delete table` of a table the fresh namespace lacks, and nft 1.0.8 `destroy table`, are left out whole and said; other errors are not blanked',
  (t) => {
    const text = [
      '#!/usr/sbin/nft -f',
      'destroy table inet filter',
      'table ip filter { chain input { type filter hook input priority 0; } }',
      'flush ruleset; delete table ip6 old',
      'delete chain ip filter gone',
    ].join('\n');
    const stderr = [
      '/r.nft:2:9-13: Error: syntax error, unexpected table, expecting string',
      'destroy table inet filter',
      '        ^^^^^',
      '/r.nft:4:33-35: Error: No such file or directory; did you mean table ‘filter’ in family ip?',
      'flush ruleset; delete table ip6 old',
      '                                ^^^',
      '/r.nft:5:21-24: Error: No such file or directory',
      'delete chain ip filter gone',
      '                    ^^^^',
    ].join('\n');
    const errors = parseNftErrors(stderr);
    const refused = nonFilterRefusals(errors, '/r.nft');
    t.equal(refused.length, 2, 'a missing chain is not a table removal');
    const notes: string[] = [];
    const out = blankRefused(text, refused, notes);
    t.equal(out.length, text.length, 'blanked in place, lines kept');
    const lines = out.split('\n');
    t.match(lines[1], /^\s*$/);
    t.equal(lines[3]?.trimEnd(), 'flush ruleset;', 'only the command after the `;`');
    t.equal(lines[4], 'delete chain ip filter gone');
    t.match(notes, [
      /^line 2: `destroy table inet filter` left out: destroy \(nft 1\.0\.8\) is not read by this nft/,
      /^line 4: `delete table ip6 old` left out: the table does not exist in the fresh namespace/,
    ]);
    t.end();
  },
);
