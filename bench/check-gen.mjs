// bench helper: a kube-proxy-sized ruleset in both shapes kube-proxy writes (nftables and iptables mode) and a journal of flows through it.
//
// Usage: node bench/check-gen.mjs --rules R --flows F --out DIR
// Writes DIR/kube-nft.nft (what kube-proxy's nftables proxier sends to `nft -f -`),
// DIR/kube-iptables.rules (iptables-save of kube-proxy's iptables proxier, filter and nat),
// DIR/journal.mpk (F recorded connections, one per flow) and prints key=value lines: rule and
// set sizes of each ruleset and the mix of flows. Services are added until both rulesets hold at
// least R rules. Deterministic (seeded PRNG): the same arguments give the same bytes. Reads dist/.
//
// The shapes follow kube-proxy's own test expectations (kubernetes/kubernetes
// pkg/proxy/nftables/proxier_test.go TestOverallNFTablesRules and
// pkg/proxy/iptables/proxier_test.go TestOverallIPTablesRules, as in
// test/fixtures/rulesets/kube-proxy-proxier-test-overall.rules), scaled up; session affinity and
// the nfacct counters are left out of the iptables shape (their `-m recent` / `-m nfacct` do not
// translate to native nft, which would bench the xt path instead).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { JournalWriter } = await import(join(root, 'dist', 'journal', 'writer.js'));

const SEED = 0x6b756265;
/** 2026-12-01T00:00:00Z in µs: a fixed start keeps every byte of the output reproducible. */
const START_US = Date.UTC(2026, 11, 1) * 1000;
const BATCH = 1024;
const CONFIRMED = 0x8;
const SEEN_REPLY = 0x2;
const ASSURED = 0x4;
const SRC_NAT = 0x10;
const DST_NAT = 0x20;
const SRC_NAT_DONE = 0x80;
const DST_NAT_DONE = 0x100;

function fail(message) {
  process.stderr.write(`check-gen: ${message}\n`);
  process.exit(2);
}

const { values: opt } = parseArgs({
  options: {
    rules: { type: 'string', default: '5000' },
    flows: { type: 'string', default: '100000' },
    out: { type: 'string' },
  },
});
const R = Number(opt.rules);
const F = Number(opt.flows);
if (!(Number.isSafeInteger(R) && R > 0)) fail('--rules must be a positive integer');
if (!(Number.isSafeInteger(F) && F > 0)) fail('--flows must be a positive integer');
if (opt.out === undefined) fail('--out DIR is required');
mkdirSync(opt.out, { recursive: true });

// xorshift32: reproducible on every Node version, unlike Math.random.
let state = SEED;
function rnd() {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
const below = (n) => rnd() % n;

// ---------------------------------------------------------------- the cluster, as kube-proxy's tests set it up
// Pod IPs 10.0.0.0/8 (endpoints in 10.180.0.0/16), ClusterIPs 172.30.0.0/16, the node 192.168.0.2
// on eth0, external IPs 192.168.99.0/24, LoadBalancer IPs 100.64.0.0/16, outside clients 203.0.113.0/24
// (the source ranges allow 203.0.113.0/25).
const NODE_IP = '192.168.0.2';
const POD_CIDR = '10.0.0.0/8';
const SERVICE_CIDR = '172.30.0.0/16';
const SOURCE_RANGE = '203.0.113.0/25';
const ip4 = (a, b, c, d) => `${a}.${b}.${c}.${d}`;
const bytes4 = (text) => Uint8Array.from(text.split('.').map(Number));

const TCP_PORTS = [80, 80, 80, 443, 443, 8080, 8443, 9090, 3000, 5432, 6379, 9200];
const UDP_PORTS = [53, 53, 514, 8125, 5353];

/** Base32 of a hash, as kube-proxy names chains by (its shape, not its value). */
function chainHash(text, len) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  for (let i = 0; i < len; i++) {
    out += alphabet[h & 31];
    h = Math.imul(h ^ (h >>> 15), 2246822519) >>> 0;
  }
  return out;
}

function makeService(i) {
  const n = i + 1;
  const proto = below(10) === 0 ? 'udp' : 'tcp';
  const ports = proto === 'tcp' ? TCP_PORTS : UDP_PORTS;
  const port = ports[below(ports.length)];
  const kind = below(100);
  const type = kind < 60 ? 'ClusterIP' : kind < 85 ? 'NodePort' : 'LoadBalancer';
  const svc = {
    ns: `ns${n % 97}`,
    name: `svc${n}`,
    portName: `p${port}`,
    proto,
    port,
    targetPort: below(3) === 0 ? 8000 + (port % 1000) : port,
    clusterIP: ip4(172, 30, (n >> 8) & 255, n & 255),
    nodePort: type === 'ClusterIP' ? 0 : 30000 + i,
    lbIP: type === 'LoadBalancer' ? ip4(100, 64, (n >> 8) & 255, n & 255) : '',
    externalIP: below(20) === 0 ? ip4(192, 168, 99, n % 250) : '',
    sourceRanges: type === 'LoadBalancer' && below(2) === 0,
    endpoints: [],
  };
  // About one in twelve has no endpoints (a rollout, a scaled-down deployment).
  const count = below(12) === 0 ? 0 : 1 + below(3);
  for (let e = 0; e < count; e++) {
    svc.endpoints.push(ip4(10, 180, below(256), 1 + below(254)));
  }
  svc.id = `${svc.ns}/${svc.name}/${proto}/${svc.portName}`;
  svc.hash = chainHash(svc.id, 8);
  return svc;
}

// ---------------------------------------------------------------- nftables mode
const NFT_BASE = [
  'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
  'add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }',
  'add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }',
  'add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }',
  'add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
  'add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }',
  'add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
  'add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }',
  'add chain ip kube-proxy cluster-ips-check',
  'add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }',
  'add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }',
  'add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }',
  'add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }',
  'add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }',
  'add chain ip kube-proxy firewall-check',
  'add chain ip kube-proxy mark-for-masquerade',
  'add chain ip kube-proxy masquerading',
  'add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }',
  'add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }',
  'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }',
  'add chain ip kube-proxy nodeport-endpoints-check',
  'add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }',
  'add chain ip kube-proxy services',
  'add chain ip kube-proxy service-endpoints-check',
  'add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
  `add rule ip kube-proxy cluster-ips-check ip daddr { ${SERVICE_CIDR} } drop comment "Drop traffic to unallocated ClusterIPs"`,
  'add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check',
  'add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check',
  'add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check',
  'add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check',
  'add rule ip kube-proxy filter-input ct state new jump service-endpoints-check',
  'add rule ip kube-proxy filter-output ct state new jump service-endpoints-check',
  'add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check',
  'add rule ip kube-proxy filter-output ct state new jump cluster-ips-check',
  'add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips',
  'add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000',
  'add rule ip kube-proxy masquerading mark and 0x4000 == 0 return',
  'add rule ip kube-proxy masquerading mark set mark xor 0x4000',
  'add rule ip kube-proxy masquerading masquerade fully-random',
  'add rule ip kube-proxy nat-output jump services',
  'add rule ip kube-proxy nat-postrouting jump masquerading',
  'add rule ip kube-proxy nat-prerouting jump services',
  'add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports',
  'add rule ip kube-proxy reject-chain reject',
  'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
  'add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
  `add element ip kube-proxy nodeport-ips { ${NODE_IP} }`,
  'add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services',
];

/** The lines one service adds in nftables mode, and how many of them are rules. */
function nftService(s) {
  const T = 'ip kube-proxy';
  const lines = [`# ${s.ns}/${s.name}`];
  const svcChain = `service-${s.hash}-${s.id}`;
  const extChain = `external-${s.hash}-${s.id}`;
  const external = s.nodePort !== 0 || s.lbIP !== '' || s.externalIP !== '';
  const keys = (ip) => `${ip} . ${s.proto} . ${s.port}`;
  lines.push(`add element ${T} cluster-ips { ${s.clusterIP} }`);
  if (s.endpoints.length === 0) {
    lines.push(
      `add element ${T} no-endpoint-services { ${keys(s.clusterIP)} comment "${s.ns}/${s.name}:${s.portName}" : goto reject-chain }`,
    );
    for (const ip of [s.lbIP, s.externalIP].filter((x) => x !== '')) {
      lines.push(
        `add element ${T} no-endpoint-services { ${keys(ip)} comment "${s.ns}/${s.name}:${s.portName}" : goto reject-chain }`,
      );
    }
    if (s.nodePort !== 0) {
      lines.push(
        `add element ${T} no-endpoint-nodeports { ${s.proto} . ${s.nodePort} comment "${s.ns}/${s.name}:${s.portName}" : goto reject-chain }`,
      );
    }
    return lines;
  }
  lines.push(`add chain ${T} ${svcChain}`);
  lines.push(
    `add rule ${T} ${svcChain} ip daddr ${s.clusterIP} ip saddr != ${POD_CIDR} jump mark-for-masquerade`,
  );
  const eps = s.endpoints.map((ep) => ({
    ep,
    chain: `endpoint-${chainHash(s.id + ep, 8)}-${s.id}__${ep}/${s.targetPort}`,
  }));
  const vmap = eps.map((e, k) => `${k} : goto ${e.chain}`).join(' , ');
  lines.push(`add rule ${T} ${svcChain} numgen random mod ${eps.length} vmap { ${vmap} }`);
  if (external) {
    lines.push(`add chain ${T} ${extChain}`);
    lines.push(`add rule ${T} ${extChain} jump mark-for-masquerade`);
    lines.push(`add rule ${T} ${extChain} goto ${svcChain}`);
  }
  for (const e of eps) {
    lines.push(`add chain ${T} ${e.chain}`);
    lines.push(`add rule ${T} ${e.chain} ip saddr ${e.ep} jump mark-for-masquerade`);
    lines.push(`add rule ${T} ${e.chain} meta l4proto ${s.proto} dnat to ${e.ep}:${s.targetPort}`);
  }
  lines.push(`add element ${T} service-ips { ${keys(s.clusterIP)} : goto ${svcChain} }`);
  for (const ip of [s.lbIP, s.externalIP].filter((x) => x !== '')) {
    lines.push(`add element ${T} service-ips { ${keys(ip)} : goto ${extChain} }`);
  }
  if (s.nodePort !== 0) {
    lines.push(
      `add element ${T} service-nodeports { ${s.proto} . ${s.nodePort} : goto ${extChain} }`,
    );
  }
  if (s.sourceRanges) {
    const fw = `firewall-${s.hash}-${s.id}`;
    lines.push(`add chain ${T} ${fw}`);
    lines.push(`add rule ${T} ${fw} ip saddr != { ${SOURCE_RANGE} } drop`);
    lines.push(`add element ${T} firewall-ips { ${keys(s.lbIP)} : goto ${fw} }`);
  }
  // Chains before the rules that jump to them, as kube-proxy's transaction orders them.
  return [
    ...lines.filter((l) => l.startsWith('add chain ')),
    ...lines.filter((l) => !l.startsWith('add chain ')),
  ];
}

// ---------------------------------------------------------------- iptables mode
const IPT_FILTER_HEAD = [
  '*filter',
  ':INPUT ACCEPT [0:0]',
  ':FORWARD ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':KUBE-EXTERNAL-SERVICES - [0:0]',
  ':KUBE-FIREWALL - [0:0]',
  ':KUBE-FORWARD - [0:0]',
  ':KUBE-NODEPORTS - [0:0]',
  ':KUBE-PROXY-FIREWALL - [0:0]',
  ':KUBE-SERVICES - [0:0]',
  // The jumps kube-proxy and the kubelet add from the built-in chains (not in the test's text).
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A INPUT -j KUBE-FIREWALL',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -j KUBE-FIREWALL',
  '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
  '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
];
const IPT_NAT_HEAD = [
  '*nat',
  ':PREROUTING ACCEPT [0:0]',
  ':INPUT ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':POSTROUTING ACCEPT [0:0]',
  ':KUBE-MARK-MASQ - [0:0]',
  ':KUBE-NODEPORTS - [0:0]',
  ':KUBE-POSTROUTING - [0:0]',
  ':KUBE-SERVICES - [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
  '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
  '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
  '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
  '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
];

/** One service's iptables lines: chain declarations and rules of filter and of nat. */
function iptService(s, out) {
  const c = `${s.ns}/${s.name}:${s.portName}`;
  const m = `-m ${s.proto} -p ${s.proto}`;
  const svcChain = `KUBE-SVC-${chainHash(s.id, 16)}`;
  const extChain = `KUBE-EXT-${chainHash(s.id, 16)}`;
  const fwChain = `KUBE-FW-${chainHash(s.id, 16)}`;
  const external = s.nodePort !== 0 || s.lbIP !== '' || s.externalIP !== '';
  const exts = [
    [s.externalIP, 'external IP'],
    [s.lbIP, 'loadbalancer IP'],
  ].filter(([ip]) => ip !== '');
  if (s.endpoints.length === 0) {
    out.filterRules.push(
      `-A KUBE-SERVICES -m comment --comment "${c} has no endpoints" ${m} -d ${s.clusterIP} --dport ${s.port} -j REJECT`,
    );
    for (const [ip] of exts) {
      out.filterRules.push(
        `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${c} has no endpoints" ${m} -d ${ip} --dport ${s.port} -j REJECT`,
      );
    }
    if (s.nodePort !== 0) {
      out.filterRules.push(
        `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${c} has no endpoints" -m addrtype --dst-type LOCAL ${m} --dport ${s.nodePort} -j REJECT`,
      );
    }
    return;
  }
  out.natChains.push(svcChain);
  out.natRules.push(
    `-A KUBE-SERVICES -m comment --comment "${c} cluster IP" ${m} -d ${s.clusterIP} --dport ${s.port} -j ${svcChain}`,
  );
  for (const [ip, what] of exts) {
    const to = s.sourceRanges && ip === s.lbIP ? fwChain : extChain;
    out.natRules.push(
      `-A KUBE-SERVICES -m comment --comment "${c} ${what}" ${m} -d ${ip} --dport ${s.port} -j ${to}`,
    );
  }
  if (s.nodePort !== 0) {
    out.natRules.push(
      `-A KUBE-NODEPORTS -m comment --comment ${c} ${m} --dport ${s.nodePort} -j ${extChain}`,
    );
  }
  if (external) {
    out.natChains.push(extChain);
    out.natRules.push(
      `-A ${extChain} -m comment --comment "masquerade traffic for ${c} external destinations" -j KUBE-MARK-MASQ`,
      `-A ${extChain} -j ${svcChain}`,
    );
  }
  if (s.sourceRanges) {
    out.natChains.push(fwChain);
    out.natRules.push(
      `-A ${fwChain} -m comment --comment "${c} loadbalancer IP" -s ${SOURCE_RANGE} -j ${extChain}`,
      `-A ${fwChain} -m comment --comment "other traffic to ${c} will be dropped by KUBE-PROXY-FIREWALL"`,
    );
    out.filterRules.push(
      `-A KUBE-PROXY-FIREWALL -m comment --comment "${c} traffic not accepted by ${fwChain}" ${m} -d ${s.lbIP} --dport ${s.port} -j DROP`,
    );
  }
  out.natRules.push(
    `-A ${svcChain} -m comment --comment "${c} cluster IP" ${m} -d ${s.clusterIP} --dport ${s.port} ! -s ${POD_CIDR} -j KUBE-MARK-MASQ`,
  );
  s.endpoints.forEach((ep, k) => {
    const sep = `KUBE-SEP-${chainHash(s.id + ep, 16)}`;
    const left = s.endpoints.length - k;
    const statistic =
      left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
    out.natRules.push(
      `-A ${svcChain} -m comment --comment "${c} -> ${ep}:${s.targetPort}"${statistic} -j ${sep}`,
    );
    out.natChains.push(sep);
    out.natRules.push(
      `-A ${sep} -m comment --comment ${c} -s ${ep} -j KUBE-MARK-MASQ`,
      `-A ${sep} -m comment --comment ${c} ${m} -j DNAT --to-destination ${ep}:${s.targetPort}`,
    );
  });
}

// ---------------------------------------------------------------- services until both reach R rules
const services = [];
const nftLines = [...NFT_BASE];
const ipt = { filterRules: [], natChains: [], natRules: [] };
const countRules = (lines) => lines.filter((l) => l.startsWith('add rule ')).length;
let nftRules = countRules(NFT_BASE);
const iptBase = [...IPT_FILTER_HEAD, ...IPT_NAT_HEAD].filter((l) => l.startsWith('-A ')).length;
const iptRules = () => iptBase + ipt.filterRules.length + ipt.natRules.length;
while (nftRules < R || iptRules() < R) {
  const s = makeService(services.length);
  services.push(s);
  const lines = nftService(s);
  nftRules += countRules(lines);
  nftLines.push(...lines);
  iptService(s, ipt);
}
// The last rule kube-proxy writes in nat KUBE-SERVICES: node ports, for local destinations.
ipt.natRules.push(
  '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
);
writeFileSync(join(opt.out, 'kube-nft.nft'), `${nftLines.join('\n')}\n`);
writeFileSync(
  join(opt.out, 'kube-iptables.rules'),
  [
    '# Generated by bench/check-gen.mjs in the shape of iptables-save v1.8.9 (nf_tables)',
    ...IPT_FILTER_HEAD,
    ...ipt.filterRules,
    'COMMIT',
    ...IPT_NAT_HEAD.slice(0, 9),
    ...ipt.natChains.map((ch) => `:${ch} - [0:0]`),
    ...IPT_NAT_HEAD.slice(9),
    ...ipt.natRules,
    'COMMIT',
    '',
  ].join('\n'),
);

// ---------------------------------------------------------------- flows
// One connection per flow, as the node recorded it (orig tuple before DNAT, reply after it):
// pods to ClusterIPs, outside clients to node ports and LoadBalancer IPs, and traffic that no
// service rule is about (ssh to the node, the node and pods reaching out, DNS, pings, scans).
const flowKinds = { cluster: 0, noEndpoints: 0, nodePort: 0, loadBalancer: 0, unrelated: 0 };
const withEndpoints = services.filter((s) => s.endpoints.length > 0);
const noEndpoints = services.filter((s) => s.endpoints.length === 0);
const nodePorts = services.filter((s) => s.nodePort !== 0 && s.endpoints.length > 0);
const lbs = services.filter((s) => s.lbIP !== '' && s.endpoints.length > 0);
const pick = (list) => list[below(list.length)];
/** A unicast route of the main table (254), as ct-record records it. */
const route = (dst, prefix, dev, gateway) => ({
  family: 4,
  dst: bytes4(dst),
  prefix,
  dev,
  ...(gateway === undefined ? {} : { gateway: bytes4(gateway) }),
  type: 'unicast',
  table: 254,
  metric: 0,
});

const writer = JournalWriter.create(
  join(opt.out, 'journal.mpk'),
  {
    tool: { name: 'conntracker bench/check-gen', version: '1' },
    host: 'bench-check-node',
    kernel: 'synthetic',
    netns: 'synthetic',
    start: START_US,
    options: { synthetic: { flows: F, rules: R, seed: SEED } },
    sysctls: {
      nf_conntrack_events: 1,
      nf_conntrack_timestamp: 0,
      nf_conntrack_acct: 1,
      ip_local_port_range: [32768, 60999],
    },
    addresses: [
      { ifname: 'lo', family: 4, address: bytes4('127.0.0.1'), prefix: 8 },
      { ifname: 'eth0', family: 4, address: bytes4(NODE_IP), prefix: 24 },
      { ifname: 'cni0', family: 4, address: bytes4('10.0.0.1'), prefix: 8 },
    ],
    // The main table of such a node (`ip route`): default via the router, the two links.
    routes: [
      route('0.0.0.0', 0, 'eth0', '192.168.0.1'),
      route('10.0.0.0', 8, 'cni0'),
      route('192.168.0.0', 24, 'eth0'),
    ],
  },
  { force: true, clock: () => 0 },
);

const tuple = () => ({
  src: null,
  dst: null,
  sport: 0,
  dport: 0,
  icmpType: 0,
  icmpCode: 0,
  icmpId: 0,
});
let time = START_US;
let id = 1;
const batch = [];
function emit(type, f, status) {
  time += 1 + below(500);
  batch.push({
    type,
    family: 4,
    proto: f.proto,
    status,
    id: f.id,
    time,
    timeKernel: false,
    orig: { ...tuple(), ...f.orig },
    reply: { ...tuple(), ...f.reply },
    tcpState: f.proto === 6 ? (type === 3 ? 7 : 1) : undefined,
    counters: undefined,
  });
  if (batch.length === BATCH) {
    writer.append(batch);
    batch.length = 0;
  }
}
const PROTO = { tcp: 6, udp: 17 };
const pod = () => bytes4(ip4(10, below(256), below(256), 2 + below(250)));
const outsider = () => bytes4(ip4(203, 0, 113, 1 + below(254)));
const ephemeral = () => 32768 + below(28232);

for (let n = 0; n < F; n++) {
  const r = below(100);
  const sport = ephemeral();
  let f;
  let status = CONFIRMED | SEEN_REPLY | ASSURED;
  if (r < 55) {
    // A pod reaches a ClusterIP: DNAT to one endpoint.
    const s = pick(withEndpoints);
    const ep = bytes4(pick(s.endpoints));
    const src = pod();
    f = {
      proto: PROTO[s.proto],
      orig: { src, dst: bytes4(s.clusterIP), sport, dport: s.port },
      reply: { src: ep, dst: src, sport: s.targetPort, dport: sport },
    };
    status |= DST_NAT | DST_NAT_DONE;
    flowKinds.cluster++;
  } else if (r < 60 && noEndpoints.length > 0) {
    // A ClusterIP without endpoints: rejected, never answered.
    const s = pick(noEndpoints);
    const src = pod();
    f = {
      proto: PROTO[s.proto],
      orig: { src, dst: bytes4(s.clusterIP), sport, dport: s.port },
      reply: { src: bytes4(s.clusterIP), dst: src, sport: s.port, dport: sport },
    };
    status = CONFIRMED;
    flowKinds.noEndpoints++;
  } else if (r < 75 && nodePorts.length > 0) {
    // An outside client to a node port: DNAT to an endpoint, masqueraded to the node's address.
    const s = pick(nodePorts);
    const ep = bytes4(pick(s.endpoints));
    const src = outsider();
    const masq = 1024 + below(64000);
    f = {
      proto: PROTO[s.proto],
      orig: { src, dst: bytes4(NODE_IP), sport, dport: s.nodePort },
      reply: { src: ep, dst: bytes4('10.0.0.1'), sport: s.targetPort, dport: masq },
    };
    status |= DST_NAT | DST_NAT_DONE | SRC_NAT | SRC_NAT_DONE;
    flowKinds.nodePort++;
  } else if (r < 82 && lbs.length > 0) {
    // An outside client to a LoadBalancer IP (half of them outside the allowed source ranges).
    const s = pick(lbs);
    const ep = bytes4(pick(s.endpoints));
    const src = outsider();
    f = {
      proto: PROTO[s.proto],
      orig: { src, dst: bytes4(s.lbIP), sport, dport: s.port },
      reply: { src: ep, dst: bytes4('10.0.0.1'), sport: s.targetPort, dport: sport },
    };
    status |= DST_NAT | DST_NAT_DONE | SRC_NAT | SRC_NAT_DONE;
    flowKinds.loadBalancer++;
  } else {
    flowKinds.unrelated++;
    const u = below(5);
    if (u === 0) {
      // ssh to the node from an admin network
      const src = bytes4(ip4(198, 51, 100, 1 + below(254)));
      f = {
        proto: 6,
        orig: { src, dst: bytes4(NODE_IP), sport, dport: 22 },
        reply: { src: bytes4(NODE_IP), dst: src, sport: 22, dport: sport },
      };
    } else if (u === 1) {
      // the node reaches out (registries, APIs)
      const dst = bytes4(ip4(93, 184, below(256), 1 + below(254)));
      f = {
        proto: 6,
        orig: { src: bytes4(NODE_IP), dst, sport, dport: 443 },
        reply: { src: dst, dst: bytes4(NODE_IP), sport: 443, dport: sport },
      };
    } else if (u === 2) {
      // a pod reaches out, masqueraded to the node's address
      const src = pod();
      const dst = bytes4(ip4(151, 101, below(256), 1 + below(254)));
      f = {
        proto: 6,
        orig: { src, dst, sport, dport: 443 },
        reply: { src: dst, dst: bytes4(NODE_IP), sport: 443, dport: sport },
      };
      status |= SRC_NAT | SRC_NAT_DONE;
    } else if (u === 3) {
      // DNS from the node to its resolver
      const dst = bytes4('192.168.0.1');
      f = {
        proto: 17,
        orig: { src: bytes4(NODE_IP), dst, sport, dport: 53 },
        reply: { src: dst, dst: bytes4(NODE_IP), sport: 53, dport: sport },
      };
    } else {
      // a scan of the node's ports from outside: never answered
      const src = outsider();
      const dport = 1 + below(65535);
      f = {
        proto: 6,
        orig: { src, dst: bytes4(NODE_IP), sport, dport },
        reply: { src: bytes4(NODE_IP), dst: src, sport: dport, dport: sport },
      };
      status = CONFIRMED;
    }
  }
  f.id = id++;
  emit(1, f, CONFIRMED);
  emit(3, f, status);
}
if (batch.length > 0) writer.append(batch);
writer.close({ stop: time + 1 });

const setSizes = {};
for (const l of nftLines) {
  const m = /^add element ip kube-proxy (\S+) /.exec(l);
  if (m) setSizes[m[1]] = (setSizes[m[1]] ?? 0) + 1;
}
process.stdout.write(
  [
    `services=${services.length}`,
    `services_without_endpoints=${noEndpoints.length}`,
    `nft_rules=${nftRules}`,
    `nft_chains=${nftLines.filter((l) => l.startsWith('add chain ')).length}`,
    ...Object.entries(setSizes).map(([k, v]) => `nft_elements_${k}=${v}`),
    `iptables_rules=${iptRules()}`,
    `iptables_filter_rules=${IPT_FILTER_HEAD.filter((l) => l.startsWith('-A ')).length + ipt.filterRules.length}`,
    `iptables_nat_rules=${IPT_NAT_HEAD.filter((l) => l.startsWith('-A ')).length + ipt.natRules.length}`,
    `flows=${F}`,
    ...Object.entries(flowKinds).map(([k, v]) => `flows_${k}=${v}`),
    '',
  ].join('\n'),
);
