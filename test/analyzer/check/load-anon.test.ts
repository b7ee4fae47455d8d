// ct-analyze check's loader and anonymous chains without root or nft: bindings found, named, written for nft, substituted, and every way they stay text said.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadRuleset } from '../../../analyzer/check/load.js';
import {
  ANON_PREFIX,
  type Binding,
  bindingBody,
  bindingFault,
  bindingFile,
  bindingSkeleton,
  bindingsTogether,
  findBindings,
  graftBindings,
  MAX_ANON_ROUNDS,
  type Rerun,
  resolveBindings,
  substituteBindings,
} from '../../../analyzer/check/load-anon.js';
import type { NftJson, NftObject } from '../../../analyzer/check/nft-json.js';
import { tempDir } from '../fixtures.js';

/** `nft -j list ruleset` of nftables' tests/shell chains/0041chain_binding_0 (nft 1.0.6): the binding as text. */
const LISTED = join(import.meta.dirname, 'chain-binding.nft.json');
const listed = (): NftJson => JSON.parse(readFileSync(LISTED, 'utf8'));
const BODY =
  '\n\t\t\tip saddr { 127.0.0.0/8, 172.23.0.0/16, 192.168.13.0/24 } counter packets 0 bytes 0 accept\n\t\t\tip6 saddr ::1 counter packets 0 bytes 0 accept\n\t\t';

const table = { table: { family: 'inet', name: 'x', handle: 1 } };
const chain = (name: string, extra: object = {}) => ({
  chain: { family: 'inet', table: 'x', name, handle: 1, ...extra },
});
const rule = (chainName: string, handle: number, expr: unknown[]) => ({
  rule: { family: 'inet', table: 'x', chain: chainName, handle, expr },
});
const json = (...objects: object[]): NftJson => ({ nftables: objects as NftObject[] });
const accept = { accept: null };
const exprOf = (j: NftJson, chainName: string, handle: number) =>
  (
    j.nftables.find((o) => {
      const r = o.rule as { chain?: string; handle?: number } | undefined;
      return r?.chain === chainName && r.handle === handle;
    })?.rule as { expr: unknown[] } | undefined
  )?.expr;

t.test(
  'anon: each string expression is found with its place, keyword, body and a name no chain of its table has',
  (t) => {
    const [b, ...more] = findBindings(listed());
    t.equal(more.length, 0, 'the corpus file has one binding');
    t.match(b, {
      family: 'inet',
      table: 'x',
      chain: 'y',
      handle: 7,
      index: 2,
      kind: 'jump',
      body: BODY,
      name: `${ANON_PREFIX}7-2`,
    });
    const taken = json(
      table,
      chain('y'),
      chain(`${ANON_PREFIX}3-0`),
      rule('y', 3, ['goto {\n\t\t\tdrop\n\t\t}', 'not a binding']),
    );
    const [g, odd] = findBindings(taken);
    t.equal(g?.kind, 'goto');
    t.equal(g?.name, `${ANON_PREFIX}3-0-`, 'a chain of that name exists: another name');
    t.equal(odd?.body, undefined, 'a text that is not `jump { … }` has no body');
    t.equal(odd?.name, `${ANON_PREFIX}3-1`);
    const noHandle = json(table, chain('y'), {
      rule: { family: 'inet', table: 'x', chain: 'y', expr: ['jump {\n}'] },
    });
    t.equal(findBindings(noHandle)[0]?.name, `${ANON_PREFIX}n1-0`, 'no handle: an ordinal');
    t.same(bindingBody('  jump {\n\taccept\n}  '), { kind: 'jump', body: '\n\taccept\n' });
    t.equal(bindingBody('jump other'), undefined);
    t.end();
  },
);

t.test(
  "anon: the file for nft is a table block with the body's lines kept; a table nft would need quoted gets none",
  (t) => {
    const [b] = findBindings(listed()) as [Binding];
    t.equal(
      bindingFile(b),
      `table inet x {\n\tchain ${ANON_PREFIX}7-2 {\n${BODY}\n\t}\n}\n`,
      'closing braces on lines of their own: nft wants a newline before them',
    );
    t.equal(bindingFile({ ...b, table: 'a table' }), undefined);
    t.equal(bindingFault({ ...b, table: 'a table' }), 'its table name cannot be written unquoted');
    t.equal(bindingFile({ ...b, body: undefined }), undefined);
    const include = { ...b, body: '\n\t\t\taccept\n\t}\n}\ninclude "/etc/shadow"\n' };
    t.equal(bindingFile(include), undefined, 'a JSON file cannot have nft read a file');
    t.equal(bindingFault(include), 'it holds an include, which nft never lists');
    t.equal(bindingFault({ ...b, body: '\n\t\t\tcomment "includes"\n' }), undefined);
    t.end();
  },
);

t.test('anon: all bodies in one file, one block per table, in the order found', (t) => {
  const two = json(
    table,
    chain('y'),
    rule('y', 7, ['jump {\n\t\t\taccept\n\t\t}']),
    {
      rule: {
        family: 'ip',
        table: 'f',
        chain: 'in',
        handle: 3,
        expr: ['goto {\n\t\t\tdrop\n\t\t}'],
      },
    },
    rule('y', 8, ['jump {\n\t\t\tdrop\n\t\t}', 'not a binding']),
  );
  t.equal(
    bindingsTogether(findBindings(two)),
    [
      'table inet x {',
      `\tchain ${ANON_PREFIX}7-0 {\n\n\t\t\taccept\n\t\t\n\t}`,
      `\tchain ${ANON_PREFIX}8-0 {\n\n\t\t\tdrop\n\t\t\n\t}`,
      '}',
      'table ip f {',
      `\tchain ${ANON_PREFIX}3-0 {\n\n\t\t\tdrop\n\t\t\n\t}`,
      '}',
      '',
    ].join('\n'),
  );
  t.end();
});

t.test(
  'anon: a binding whose chain is listed becomes a jump (goto) to it; one not made stays text; the input is kept',
  (t) => {
    const input = json(
      table,
      chain('y'),
      rule('y', 7, [{ match: {} }, 'jump {\n\t\t\taccept\n\t\t}']),
      rule('y', 8, ['goto {\n\t\t\tdrop\n\t\t}']),
      rule('y', 9, ['jump {\n\t\t\tdrop\n\t\t}']),
    );
    const before = JSON.stringify(input);
    const bindings = findBindings(input);
    const made = json(...input.nftables, chain(`${ANON_PREFIX}7-1`), chain(`${ANON_PREFIX}8-0`));
    const out = substituteBindings(made, bindings);
    t.same(exprOf(out, 'y', 7), [{ match: {} }, { jump: { target: `${ANON_PREFIX}7-1` } }]);
    t.same(exprOf(out, 'y', 8), [{ goto: { target: `${ANON_PREFIX}8-0` } }]);
    t.same(exprOf(out, 'y', 9), ['jump {\n\t\t\tdrop\n\t\t}'], 'its chain was not made');
    t.equal(JSON.stringify(input), before, 'the listing given is not changed');
    t.equal(substituteBindings(input, bindings), input, 'nothing made: the same listing');
    t.end();
  },
);

/**
 * A stand-in for the namespace run: each file whose body holds no `refuse` becomes its chain,
 * with the rules `nested` says for it; a refused one is nft's error naming the file.
 */
function fakeNft(
  base: NftJson,
  nested: Record<string, unknown[][]> = {},
): { rerun: Rerun; calls: string[][] } {
  const calls: string[][] = [];
  const rerun: Rerun = async (files) => {
    calls.push([...files.values()]);
    const objects: object[] = [...base.nftables];
    const errors: string[] = [];
    let handle = 100;
    for (const [file, text] of files) {
      // The stand-in loads each file alone, as nft does where it refuses `all`.
      if (file === 'all') continue;
      const name = /chain (\S+) \{/.exec(text)?.[1] as string;
      if (text.includes('refuse')) {
        errors.push(
          `/tmp/ct-ruleset-x/anon-1/${file}:3:4-9: Error: syntax error, unexpected refuse`,
          '\t\t\trefuse',
          '\t\t\t^^^^^^',
        );
        continue;
      }
      objects.push(chain(name));
      for (const expr of nested[name] ?? [[accept]]) objects.push(rule(name, handle++, expr));
    }
    return { code: 0, stdout: JSON.stringify(json(...objects)), stderr: errors.join('\n') };
  };
  return { rerun, calls };
}
const parse = (s: string): NftJson => JSON.parse(s);

t.test('anon: all bindings of a file are made in one rerun, and jumped to', async (t) => {
  const { rerun, calls } = fakeNft(listed());
  const r = await resolveBindings(listed(), rerun, parse);
  t.equal(r.runs, 1);
  t.equal(calls.length, 1);
  t.match(calls[0], [
    /^table inet x \{\n\tchain ct-analyze-anon-7-2 \{\n\n\t\t\tip saddr/,
    /^table inet x \{\n\tchain ct-analyze-anon-7-2 \{\n\n\t\t\tip saddr/,
  ]);
  t.same(exprOf(r.json, 'y', 7)?.[2], { jump: { target: `${ANON_PREFIX}7-2` } });
  t.same(r.notLoaded, []);
});

t.test(
  'anon: a binding nested in a made chain takes one more rerun, both made; nesting is bounded',
  async (t) => {
    const first = json(table, chain('y'), rule('y', 7, ['jump {\n\t\t\taccept\n\t\t}']));
    const inner = 'jump {\n\t\t\t\tdrop\n\t\t\t}';
    const { rerun, calls } = fakeNft(first, { [`${ANON_PREFIX}7-0`]: [[inner]] });
    const r = await resolveBindings(first, rerun, parse);
    t.equal(r.runs, 2, 'one rerun per level');
    t.equal(calls[1]?.length, 3, 'the second run makes the outer chain again, then the inner');
    t.same(exprOf(r.json, `${ANON_PREFIX}7-0`, 100), [{ jump: { target: `${ANON_PREFIX}100-0` } }]);
    t.same(r.notLoaded, []);

    // Every made chain holds a binding again: the rounds stop, the deepest stays text.
    const deep: Rerun = async (files) => {
      const objects: object[] = [...first.nftables];
      let handle = 100;
      for (const [file, text] of files) {
        if (file === 'all') continue;
        const name = /chain (\S+) \{/.exec(text)?.[1] as string;
        objects.push(chain(name), rule(name, handle++, [inner]));
      }
      return { code: 0, stdout: JSON.stringify(json(...objects)), stderr: '' };
    };
    const bounded = await resolveBindings(first, deep, parse);
    t.equal(bounded.runs, MAX_ANON_ROUNDS);
    t.equal(bounded.notLoaded.length, 1);
    t.match(bounded.notLoaded[0], /left as text, its flows undetermined: nested over 3 levels/);
  },
);

t.test(
  "anon: a body nft refuses stays text, with nft's error; the others are still made",
  async (t) => {
    const first = json(
      table,
      chain('y'),
      rule('y', 7, ['jump {\n\t\t\trefuse\n\t\t}']),
      rule('y', 8, ['jump {\n\t\t\taccept\n\t\t}']),
    );
    const r = await resolveBindings(first, fakeNft(first).rerun, parse);
    t.same(exprOf(r.json, 'y', 7), ['jump {\n\t\t\trefuse\n\t\t}']);
    t.same(exprOf(r.json, 'y', 8), [{ jump: { target: `${ANON_PREFIX}8-0` } }]);
    t.same(r.notLoaded, [
      'anonymous chain (jump { … }) in inet x chain y rule handle 7 left as text, its flows undetermined: nft did not load its body as a chain: Error: syntax error, unexpected refuse (at: refuse)',
    ]);
  },
);

t.test('anon: a rerun that fails leaves every binding text, saying why', async (t) => {
  const failed: Rerun = async () => ({
    code: 1,
    stdout: '',
    stderr: 'internal:0:0-0: Error: Could not process rule: Operation not supported\n',
  });
  const r = await resolveBindings(listed(), failed, parse);
  t.same(r.json, listed());
  t.match(r.notLoaded, [
    /rule handle 7 left as text.*the namespace run that makes it failed: internal:0:0-0: Error: Could not process rule/,
  ]);
  const odd = json(table, chain('y'), rule('y', 7, ['something else']));
  const none = await resolveBindings(odd, failed, parse);
  t.equal(none.runs, 0, 'nothing to make: no run');
  t.match(none.notLoaded, [/its text is not `jump \{ … \}`/]);
});

t.test(
  'anon: for JSON input, the skeleton holds no rule, chains without hooks, sets without elements; the graft adds only made chains',
  (t) => {
    const input = json(
      { metainfo: { version: '1.0.6' } },
      table,
      chain('y', { type: 'filter', hook: 'input', prio: 0, policy: 'accept' }),
      {
        set: {
          family: 'inet',
          table: 'x',
          name: 's',
          handle: 3,
          type: 'ipv4_addr',
          elem: ['10.0.0.1'],
        },
      },
      { counter: { family: 'inet', table: 'x', name: 'c', handle: 4, packets: 0, bytes: 0 } },
      { 'ct helper': { family: 'inet', table: 'x', name: 'h', handle: 5 } },
      rule('y', 7, ['jump {\n\t\t\tip saddr @s accept\n\t\t}']),
    );
    t.same(bindingSkeleton(input).nftables, [
      { table: { family: 'inet', name: 'x' } },
      { chain: { family: 'inet', table: 'x', name: 'y' } },
      { set: { family: 'inet', table: 'x', name: 's', type: 'ipv4_addr' } },
      { counter: { family: 'inet', table: 'x', name: 'c', packets: 0, bytes: 0 } },
    ]);
    const listing = json(
      table,
      chain('y'),
      chain(`${ANON_PREFIX}7-0`),
      rule(`${ANON_PREFIX}7-0`, 9, [accept]),
    );
    const grafted = graftBindings(input, listing);
    t.same(grafted.nftables, [
      ...input.nftables,
      chain(`${ANON_PREFIX}7-0`),
      rule(`${ANON_PREFIX}7-0`, 9, [accept]),
    ]);
    t.end();
  },
);

t.test(
  'load: JSON with a binding and no nft still loads, the binding left as text and one line saying what to install',
  async (t) => {
    const loaded = await loadRuleset(LISTED, { toolPath: '' });
    t.same(loaded.json, listed());
    t.equal(loaded.runs, 0);
    t.equal(loaded.notLoaded.length, 1);
    t.match(
      loaded.notLoaded[0],
      /^1 anonymous chain \(jump \{ … \}\) left as text, its flows undetermined: .*install the nftables and util-linux packages\)$/,
    );
    t.notMatch(loaded.notLoaded[0], /pass the ruleset as JSON/, 'it is JSON already');
  },
);

/** A directory of stand-in tools: each a shell script, so no root and no nft are needed. */
function fakeTools(dir: string, scripts: Record<string, string>): string {
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

t.test(
  'load: JSON with a binding where the namespace is refused still loads, saying why',
  async (t) => {
    const tools = fakeTools(tempDir(t, 'anon-nons-bin'), {
      nft: 'exit 0',
      unshare: 'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1',
    });
    const loaded = await loadRuleset(LISTED, { toolPath: tools, privileged: false });
    t.same(loaded.json, listed());
    t.match(loaded.notLoaded, [/left as text.*cannot create a user and network namespace/]);
  },
);

t.test(
  'load: an nft file with a binding is loaded again with its body as a chain, in one more run',
  async (t) => {
    const dir = tempDir(t, 'anon-nft');
    const state = join(dir, 'made');
    const made = json(
      ...listed().nftables,
      chain(`${ANON_PREFIX}7-2`),
      rule(`${ANON_PREFIX}7-2`, 10, [accept]),
    );
    writeFileSync(join(dir, 'first.json'), JSON.stringify(listed()));
    writeFileSync(join(dir, 'made.json'), JSON.stringify(made));
    // unshare runs what follows `--`; nft lists the file's ruleset, and the made chain once the
    // body files were loaded after it (all at once, from the file \`all\`).
    const tools = fakeTools(tempDir(t, 'anon-nft-bin'), {
      unshare: 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"',
      nft: [
        'for a; do f=$a; done',
        `case "$*" in *"list ruleset"*) if [ -e '${state}' ]; then cat '${join(dir, 'made.json')}'; else cat '${join(dir, 'first.json')}'; fi;;`,
        `*/all) cp "$f" '${state}';; esac`,
      ].join('\n'),
    });
    const file = join(dir, 'binding.nft');
    writeFileSync(file, 'table inet x { }\n');
    const loaded = await loadRuleset(file, { toolPath: tools, privileged: false });
    t.equal(loaded.via, 'nft');
    t.equal(loaded.runs, 2, 'the load, then one rerun for the bindings');
    t.match(readFileSync(state, 'utf8'), /^table inet x \{\n\tchain ct-analyze-anon-7-2 \{\n/);
    t.same(exprOf(loaded.json, 'y', 7)?.[2], { jump: { target: `${ANON_PREFIX}7-2` } });
    t.same(loaded.notLoaded, []);
  },
);
