// End to end on the real kernel: rules generated from a recording load, pass its traffic, refuse other.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { addressBytes } from '../../../analyzer/core/address.js';
import { addressNumber, cidrContains, parseCidr } from '../../../analyzer/core/prefix.js';
import { ANALYZER, RECORDER, recordScenario } from '../../../samples/record.js';
import { runScenario, TRAFFIC_TOOL } from '../../../samples/scenario.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { createTopology, run, type Topology, waitForLine } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const dir = mkdtempSync(join(tmpdir(), `ct-e2e-rules-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A port nothing in the scenario uses: a flow to it was never recorded. */
const UNRECORDED_PORT = 8081;

async function rules(args: string[]): Promise<string> {
  const res = await run([process.execPath, ANALYZER, 'rules', ...args], {
    check: false,
    timeoutMs: 30_000,
  });
  if (res.code !== 0)
    throw new Error(`ct-analyze rules ${args.join(' ')}: exit ${res.code}: ${res.stderr}`);
  return res.stdout;
}

/** A TCP connection from the client to the server's address; its exit code and stderr. */
async function connect(topo: Topology, address: string, port: number) {
  return topo.exec(topo.client.ns, [process.execPath, TRAFFIC_TOOL, 'tcp', address, String(port)], {
    check: false,
    timeoutMs: 10_000,
  });
}

for (const kind of ['lan', 'nat'] as const) {
  t.test(
    `${kind}: the generated nft ruleset passes the recorded scenario and rejects an unrecorded flow`,
    async (t) => {
      const topo = await createTopology(t, kind);
      const journal = join(dir, `${kind}.mpk`);
      const recorded = await recordScenario(topo, journal);
      t.equal(recorded.exit, 0, `ct-record exits 0\n${recorded.stderr}`);

      const nft = await rules([journal]);
      const { client, server } = topo;
      const chain = kind === 'lan' ? 'input' : 'forward';
      const daddr = kind === 'lan' ? '' : ` ip daddr ${server.v4}`;
      const web = new RegExp(
        `\\n {4}ip saddr @(\\w+)${daddr.replaceAll('.', '\\.')} tcp dport \\{ 80, 443 \\} counter accept comment "3 flows, first `,
      ).exec(nft);
      t.ok(web, `the web service is one ${chain} rule, its sources a set`);
      const elements = new RegExp(
        `\\n {2}set ${web?.[1]} \\{\\n[^}]*elements = \\{ ([^}]*) \\}`,
      ).exec(nft);
      const client4 = addressNumber(addressBytes(client.v4));
      t.ok(
        (elements?.[1] ?? '')
          .split(', ')
          .map(parseCidr)
          .some((c) => c !== undefined && cidrContains(c, 4, client4)),
        `the set holds the client ${client.v4}: ${elements?.[1]}`,
      );
      t.match(
        nft,
        /\n# ONE-WAY UDP syslog \(514\) .*from 1 host is unanswered by design: allow it with --allow-one-way/,
        'one-way syslog is a loud comment',
      );
      const ruleLines = nft
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('#'))
        .join('\n');
      t.notMatch(ruleLines, /dport [^\n]*514/, 'one-way syslog is not allowed');
      const body = nft.slice(nft.indexOf(`chain ${chain} {`));
      t.match(
        body,
        /icmp type echo-request limit rate 10\/second burst 20 packets counter accept/,
        `ping is allowed in ${chain}, rate-limited`,
      );

      const check = await topo.exec(topo.recordNs, ['nft', '-c', '-f', '-'], {
        input: nft,
        check: false,
      });
      t.equal(check.code, 0, `nft -c -f accepts the ruleset: ${check.stderr}`);

      // The unrecorded service exists and answers before the rules are loaded: a refusal after
      // loading them is theirs, not a missing listener.
      const extra = topo.spawn(server.ns, [
        process.execPath,
        TRAFFIC_TOOL,
        'serve',
        '--tcp',
        String(UNRECORDED_PORT),
        '--for',
        '60',
      ]);
      await waitForLine(extra.stdout as NonNullable<typeof extra.stdout>, /^ready$/, 10_000);
      const before = await connect(topo, server.v4, UNRECORDED_PORT);
      t.equal(
        before.code,
        0,
        `port ${UNRECORDED_PORT} answers without the rules: ${before.stderr}`,
      );

      await topo.exec(topo.recordNs, ['nft', '-f', '-'], { input: nft });
      // -s (stateless): counters left out, which packets between the two listings may move.
      const listed = await topo.exec(topo.recordNs, [
        'nft',
        '-s',
        'list',
        'table',
        'inet',
        'conntracker',
      ]);
      t.match(listed.stdout, /policy drop;/, 'the table is loaded');

      // Loading again replaces the table instead of failing or doubling it.
      await topo.exec(topo.recordNs, ['nft', '-f', '-'], { input: nft });
      const again = await topo.exec(topo.recordNs, [
        'nft',
        '-s',
        'list',
        'table',
        'inet',
        'conntracker',
      ]);
      t.equal(again.stdout, listed.stdout, 're-loading the file replaces the table');

      // runScenario rejects as soon as one of its clients fails (no reply, refused, timed out).
      const replay = await runScenario(topo).then(
        (r) => ({ ok: true as const, flows: r.flows.length }),
        (err: Error) => ({ ok: false as const, why: err.message }),
      );
      t.ok(
        replay.ok,
        `the recorded scenario still works with the rules loaded: ${JSON.stringify(replay)}`,
      );

      for (const address of [server.v4, server.v6]) {
        const after = await connect(topo, address, UNRECORDED_PORT);
        t.not(
          after.code,
          0,
          `TCP to ${address} port ${UNRECORDED_PORT} (never recorded) is refused`,
        );
        t.match(
          after.stderr,
          /EHOSTUNREACH|EACCES/,
          `refused by the firewall's admin-prohibited, not by a closed port: ${after.stderr.trim()}`,
        );
      }
      const ipt = await run(['sh', '-c', 'command -v iptables-restore'], { check: false });
      if (ipt.code !== 0) {
        t.fail('iptables-restore is missing: install the iptables package (.ci/run does)');
        return;
      }
      for (const family of ['4', '6'] as const) {
        const text = await rules(['--format', 'iptables', '--family', family, journal]);
        const restore = family === '4' ? 'iptables-restore' : 'ip6tables-restore';
        const res = await topo.exec(topo.recordNs, [restore, '--test', '--noflush'], {
          input: text,
          check: false,
        });
        t.equal(
          res.code,
          0,
          `${restore} --test --noflush accepts the IPv${family} part: ${res.stderr}`,
        );
      }
    },
  );
}
