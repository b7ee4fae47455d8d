// ct-analyze check: whole connections through the real corpus rulesets (nft 1.0.6's JSON), compiled by compileRuleset.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { compileRuleset } from '../../../analyzer/check/compile.js';
import { type EvaluateOptions, evaluateFlow } from '../../../analyzer/check/connection.js';
import type { HostView, Rule } from '../../../analyzer/check/model.js';
import type { NftJson } from '../../../analyzer/check/nft-json.js';
import { formatAddress } from '../../../analyzer/core/address.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { fateText } from './fate-text.js';
import { type FlowSpec, flow } from './hand-ruleset.js';

const LOADED = join(PACKAGE_ROOT, 'test', 'fixtures', 'rulesets', 'loaded');
const load = (name: string): NftJson => JSON.parse(readFileSync(join(LOADED, name), 'utf8'));

/** The server 203.0.113.1 / 2001:db8::1: clients on eth0, 10/8 behind eth1, loopback on lo. */
const HOST: HostView = {
  routeDevice: (a) => (a.length === 4 && a[0] === 127 ? 'lo' : a[0] === 10 ? 'eth1' : 'eth0'),
  addressType: (a) =>
    ['203.0.113.1', '2001:db8::1', '127.0.0.1'].includes(formatAddress(a)) ? 'local' : 'unicast',
};
const WITH_HOST: EvaluateOptions = { collapse: { kind: 'none' }, host: HOST };
const NO_HOST: EvaluateOptions = { collapse: { kind: 'none' } };

const FLOWS: Record<string, FlowSpec> = {
  'in tcp/22': { src: '192.0.2.7', dport: 22, direction: ['input'] },
  'in tcp/80': { src: '192.0.2.7', dport: 80, direction: ['input'] },
  'in udp/53': { src: '192.0.2.7', proto: 17, dport: 53, direction: ['input'] },
  'in ping': { src: '192.0.2.7', proto: 1, icmpType: 8, direction: ['input'] },
  'out tcp/443': { src: '203.0.113.1', dst: '198.51.100.9', dport: 443, direction: ['output'] },
  'out udp/53': {
    src: '203.0.113.1',
    dst: '198.51.100.9',
    proto: 17,
    dport: 53,
    direction: ['output'],
  },
  'fwd tcp/443': { src: '10.0.0.7', dst: '198.51.100.9', dport: 443, direction: ['forward'] },
  'fwd dnat': {
    src: '192.0.2.7',
    dst: '203.0.113.1',
    dport: 8080,
    direction: ['forward'],
    nat: { dst: ['10.0.0.5', 80] },
  },
  'local tcp/5432': { src: '127.0.0.1', dst: '127.0.0.1', dport: 5432, direction: ['local'] },
  'in6 tcp/22': { src: '2001:db8::7', dst: '2001:db8::1', dport: 22, direction: ['input'] },
  'out6 ping': {
    src: '2001:db8::1',
    dst: '2001:db8::9',
    proto: 58,
    icmpType: 128,
    direction: ['output'],
  },
  'unanswered udp/514': {
    src: '192.0.2.7',
    proto: 17,
    dport: 514,
    direction: ['input'],
    confirmed: false,
  },
};

function fates(json: NftJson, opts: EvaluateOptions): Record<string, string> {
  const { ruleset } = compileRuleset(json);
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(FLOWS)) {
    out[name] = fateText(evaluateFlow(ruleset, flow(spec), opts, new Set()));
  }
  return out;
}

t.test(
  'corpus: every loaded ruleset gives every kind of flow a fate; the indexed walk agrees with the plain one',
  async (t) => {
    const files = readdirSync(LOADED).filter((f) => f.endsWith('.json'));
    t.ok(files.length >= 50, `${files.length} loaded rulesets`);
    const kinds = new Map<string, number>();
    for (const file of files) {
      const { ruleset } = compileRuleset(load(file));
      for (const [name, spec] of Object.entries(FLOWS)) {
        for (const opts of [WITH_HOST, NO_HOST]) {
          const f = flow(spec);
          const hitPlain = new Set<Rule>();
          const hitFast = new Set<Rule>();
          const plain = fateText(evaluateFlow(ruleset, f, { ...opts, plain: true }, hitPlain));
          const fast = fateText(evaluateFlow(ruleset, f, opts, hitFast));
          if (
            plain !== fast ||
            hitPlain.size !== hitFast.size ||
            ![...hitPlain].every((r) => hitFast.has(r))
          ) {
            t.fail(`${file}, ${name}: plain ${plain}, indexed ${fast}`);
          }
          const kind = fast.split(' ')[0] as string;
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
      }
    }
    t.pass(`fates: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    t.ok((kinds.get('blocked') ?? 0) > 0 && (kinds.get('accepted') ?? 0) > 0, 'both answers occur');
  },
);

t.test(
  "corpus: NixOS's example server ruleset, as its comments say: SSH and ping in, everything out",
  async (t) => {
    const json = load('public-nixos-networking.nftables.ruleset-example.nft.json');
    const got = fates(json, WITH_HOST);
    t.equal(got['in tcp/22'], 'accepted');
    t.equal(got['in tcp/80'], 'blocked input: inet filter input #8 drop', 'counter drop');
    t.equal(got['in udp/53'], 'blocked input: inet filter input #8 drop');
    t.equal(got['in ping'], 'accepted');
    t.equal(got['in6 tcp/22'], 'accepted');
    t.equal(got['out tcp/443'], 'accepted', 'the answer is established on input');
    t.equal(got['out6 ping'], 'accepted');
    t.equal(got['local tcp/5432'], 'accepted', 'iifname lo');
    t.equal(got['unanswered udp/514'], 'blocked input: inet filter input #8 drop');
    // Without routes, the recorded addresses still say a stranger's packet is not on lo.
    t.equal(fates(json, NO_HOST)['in tcp/80'], 'blocked input: inet filter input #8 drop');
    // Without even the addresses (no direction recorded), `iifname lo` cannot be decided.
    const { ruleset } = compileRuleset(json);
    const stranger = flow({ src: '192.0.2.7', dport: 80 });
    t.equal(
      fateText(evaluateFlow(ruleset, stranger, NO_HOST, new Set())),
      'undetermined first input: inet filter input #1 (iifname "lo")',
    );
  },
);

t.test(
  'corpus: the same ruleset without its established rule breaks outgoing connections on the reply',
  async (t) => {
    const json = load('public-nixos-networking.nftables.ruleset-example.nft.json');
    const cut: NftJson = {
      nftables: json.nftables.filter(
        (o) => !('rule' in o && JSON.stringify(o).includes('"established"')),
      ),
    };
    t.equal(cut.nftables.length, json.nftables.length - 1, 'one rule left out');
    const got = fates(cut, WITH_HOST);
    t.equal(got['out tcp/443'], 'breaks reply input: inet filter input #7 drop');
    t.equal(got['in tcp/22'], 'accepted', 'tcp dport 22 accepts the later packets too');
    t.match(got['out udp/53'], /^breaks reply input/);
  },
);

t.test(
  "corpus: nftables' workstation example drops unsolicited input and lets answers in",
  async (t) => {
    const got = fates(load('nftables-example-workstation.nft.json'), WITH_HOST);
    t.equal(got['in tcp/22'], 'blocked input: inet filter input #5 drop');
    t.equal(got['out tcp/443'], 'accepted');
    t.equal(got['local tcp/5432'], 'accepted', 'iif lo');
    t.equal(got['fwd tcp/443'], 'accepted', 'no forward chain');
  },
);
