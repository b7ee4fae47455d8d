// ct-analyze rules: what a flow proves (its evidence) and which sources look like scanners.
import { CtError, Exit } from '../../common/errors.js';
import { Proto } from '../../journal/event.js';
import type { Flow } from '../core/flows.js';
import type { Evidence, ScanSuspect } from './model.js';

/**
 * TCP needs IPS_ASSURED (the handshake's last ACK): a reply alone is what a SYN to a closed port
 * (RST) or a half-open scan of an open one (SYN-ACK, then the scanner's RST) gets. UDP and ICMP
 * have no handshake: a reply is the evidence (UDP's ASSURED means a stream that lasted, which a
 * DNS query never is).
 */
export function evidenceOf(flow: Flow): Evidence {
  if (flow.proto === Proto.TCP) {
    return flow.assured ? 'established' : flow.confirmed ? 'half-open' : 'unanswered';
  }
  return flow.confirmed ? 'established' : 'unanswered';
}

/** --scan-window, --scan-ports, --scan-hosts: what makes a source a scan suspect. */
export interface ScanOptions {
  /** Seconds: flows whose first-seen times lie at most this far apart share a window. */
  window: number;
  /** Distinct destination ports (TCP and UDP) of one destination within a window. */
  ports: number;
  /** Distinct destinations on one protocol and port within a window. */
  hosts: number;
}

export const DEFAULT_SCAN: Readonly<ScanOptions> = { window: 300, ports: 10, hosts: 16 };

/** Checks the scan options (as the command line gives them) and returns them. */
export function checkScanOptions(opts: ScanOptions): ScanOptions {
  if (!Number.isFinite(opts.window) || opts.window <= 0) {
    throw new CtError(
      'EUSAGE',
      `--scan-window must be a number of seconds greater than 0, got ${opts.window}: give e.g. 300 (five minutes), or more for a slow scan over a long recording`,
      { exit: Exit.USAGE },
    );
  }
  for (const [flag, value, example] of [
    ['--scan-ports', opts.ports, DEFAULT_SCAN.ports],
    ['--scan-hosts', opts.hosts, DEFAULT_SCAN.hosts],
  ] as const) {
    // One port or one host is every client: a threshold of 1 would make every failure a scan.
    if (!Number.isSafeInteger(value) || value < 2) {
      throw new CtError(
        'EUSAGE',
        `${flag} must be a whole number of at least 2, got ${value}: give e.g. ${example}`,
        { exit: Exit.USAGE },
      );
    }
  }
  return opts;
}

/** One source's flows, as the sweep reads them: dense ids per source, no strings per flow. */
interface SourceFlows {
  readonly family: 4 | 6;
  readonly address: Uint8Array;
  /** Indices into the flows given of its TCP and UDP flows (the targets' flows). */
  readonly targeted: number[];
  flows: number;
  established: number;
  firstSeen: number;
  lastSeen: number;
}

/**
 * The sources that scanned, sorted by family then address. A source is a suspect when some
 * window of `opts.window` seconds (by first-seen time; flows without times form one window of
 * their own) holds, from it, at least `opts.ports` distinct (protocol, port) targets on one
 * destination or at least `opts.hosts` destinations on one (protocol, port), and at most half of
 * the targets (protocol, destination, port) it touched in that window have an `established`
 * flow there. Only TCP and UDP flows are targets. Windows slide over every position (a window
 * that ends at a flow counts as much as one that starts there), in O(n log n) for n flows.
 */
export function findScanSuspects(flows: readonly Flow[], opts: ScanOptions): ScanSuspect[] {
  checkScanOptions(opts);
  const sources = new Map<number | string, SourceFlows>();
  for (let i = 0; i < flows.length; i++) {
    const f = flows[i] as Flow;
    const key = addressKey(f.src);
    let s = sources.get(key);
    if (s === undefined) {
      s = {
        family: f.family,
        address: f.src,
        targeted: [],
        flows: 0,
        established: 0,
        firstSeen: Number.POSITIVE_INFINITY,
        lastSeen: Number.NEGATIVE_INFINITY,
      };
      sources.set(key, s);
    }
    s.flows++;
    if (evidenceOf(f) === 'established') s.established++;
    if (Number.isFinite(f.firstSeen) && f.firstSeen < s.firstSeen) s.firstSeen = f.firstSeen;
    if (Number.isFinite(f.lastSeen) && f.lastSeen > s.lastSeen) s.lastSeen = f.lastSeen;
    if (f.proto === Proto.TCP || f.proto === Proto.UDP) s.targeted.push(i);
  }
  const sweep = new Sweep(opts);
  const out: ScanSuspect[] = [];
  for (const s of sources.values()) {
    if (s.targeted.length === 0) continue;
    const found = sweep.run(flows, s.targeted);
    if (found === undefined) continue;
    out.push({
      family: s.family,
      address: Uint8Array.from(s.address),
      ports: found.ports,
      hosts: found.hosts,
      flows: s.flows,
      established: s.established,
      ...(Number.isFinite(s.firstSeen) ? { firstSeen: s.firstSeen } : {}),
      ...(Number.isFinite(s.lastSeen) ? { lastSeen: s.lastSeen } : {}),
    });
  }
  return out.sort((a, b) => a.family - b.family || compareBytes(a.address, b.address));
}

/** An address as a Map key: IPv4 a number, IPv6 a 16-character string (families never mix). */
function addressKey(b: Uint8Array): number | string {
  if (b.length === 4)
    return (
      (((b[0] as number) << 24) |
        ((b[1] as number) << 16) |
        ((b[2] as number) << 8) |
        (b[3] as number)) >>>
      0
    );
  return String.fromCharCode(...b);
}

/** The dense id of `key` in `ids`, a new one (its size) the first time. */
function idOf<K>(ids: Map<K, number>, key: K): number {
  const known = ids.get(key);
  if (known !== undefined) return known;
  ids.set(key, ids.size);
  return ids.size - 1;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * One source's sliding window. Its flows get dense ids (destination, service = protocol and
 * port, target = destination and service) and the window keeps counts per id, so each flow
 * entering or leaving costs O(1) and the test after each step is two comparisons.
 */
class Sweep {
  readonly #opts: ScanOptions;
  // Per flow of the source (in time order, untimed last): its ids, whether it is established.
  #dst = new Int32Array(0);
  #svc = new Int32Array(0);
  #target = new Int32Array(0);
  #est = new Uint8Array(0);
  // Per id: flows in the window, established flows in the window, distinct counts.
  #targetFlows = new Int32Array(0);
  #targetEst = new Int32Array(0);
  #dstPorts = new Int32Array(0);
  #svcHosts = new Int32Array(0);
  // The window: distinct targets, established targets, destinations and services at a threshold.
  #targets = 0;
  #estTargets = 0;
  #hotDsts = 0;
  #hotSvcs = 0;
  #maxPorts = 0;
  #maxHosts = 0;

  constructor(opts: ScanOptions) {
    this.#opts = opts;
  }

  /**
   * Sweeps the source's flows `of` (indices into `flows`). When it is a suspect: the most ports
   * of one destination and hosts of one service any window held (suspect or not in that window).
   */
  run(flows: readonly Flow[], of: readonly number[]): { ports: number; hosts: number } | undefined {
    const timed = of.filter((i) => Number.isFinite((flows[i] as Flow).firstSeen));
    timed.sort((a, b) => (flows[a] as Flow).firstSeen - (flows[b] as Flow).firstSeen);
    const untimed = of.filter((i) => !Number.isFinite((flows[i] as Flow).firstSeen));
    const order = [...timed, ...untimed];
    const m = order.length;
    this.#index(flows, order);
    const times = Float64Array.from(timed, (i) => (flows[i] as Flow).firstSeen);
    const width = this.#opts.window * 1e6;
    let suspect = false;
    // A flow at time t is inside [a, a + width] from a = t - width (enters) until a > t (leaves);
    // a sweeps upwards, and at one a entering comes before leaving (both ends are inclusive).
    let lo = 0;
    let hi = 0;
    const n = timed.length;
    while (lo < n) {
      if (hi < n && (lo === hi || (times[hi] as number) - width <= (times[lo] as number))) {
        const at = times[hi] as number;
        while (hi < n && times[hi] === at) this.#enter(hi++);
      } else {
        const at = times[lo] as number;
        while (lo < hi && times[lo] === at) this.#leave(lo++);
      }
      if (this.#scanning()) suspect = true;
    }
    // The flows without times: one window of their own.
    for (let k = n; k < m; k++) this.#enter(k);
    if (this.#scanning()) suspect = true;
    const found = { ports: this.#maxPorts, hosts: this.#maxHosts };
    return suspect ? found : undefined;
  }

  #scanning(): boolean {
    return (this.#hotDsts > 0 || this.#hotSvcs > 0) && 2 * this.#estTargets <= this.#targets;
  }

  /** Dense ids for the flows in `order` and zeroed counts for them. */
  #index(flows: readonly Flow[], order: readonly number[]): void {
    const m = order.length;
    this.#dst = new Int32Array(m);
    this.#svc = new Int32Array(m);
    this.#target = new Int32Array(m);
    this.#est = new Uint8Array(m);
    const dsts = new Map<number | string, number>();
    const svcs = new Map<number, number>();
    const targets = new Map<number, number>();
    for (let k = 0; k < m; k++) {
      const f = flows[order[k] as number] as Flow;
      const d = idOf(dsts, addressKey(f.dst));
      const s = idOf(svcs, f.proto * 0x10000 + f.dport);
      // d < 2^31 and s < 2^18: the target's key stays an exact integer.
      const t = idOf(targets, d * 0x40000 + s);
      this.#dst[k] = d;
      this.#svc[k] = s;
      this.#target[k] = t;
      this.#est[k] = evidenceOf(f) === 'established' ? 1 : 0;
    }
    this.#targetFlows = new Int32Array(targets.size);
    this.#targetEst = new Int32Array(targets.size);
    this.#dstPorts = new Int32Array(dsts.size);
    this.#svcHosts = new Int32Array(svcs.size);
    this.#targets = 0;
    this.#estTargets = 0;
    this.#hotDsts = 0;
    this.#hotSvcs = 0;
    this.#maxPorts = 0;
    this.#maxHosts = 0;
  }

  #enter(k: number): void {
    const t = this.#target[k] as number;
    if (this.#est[k] === 1) {
      const est = this.#targetEst[t] as number;
      this.#targetEst[t] = est + 1;
      if (est === 0) this.#estTargets++;
    }
    const had = this.#targetFlows[t] as number;
    this.#targetFlows[t] = had + 1;
    if (had !== 0) return;
    // A target new to the window: one more port on its destination, one more host on its service.
    this.#targets++;
    const d = this.#dst[k] as number;
    const ports = (this.#dstPorts[d] as number) + 1;
    this.#dstPorts[d] = ports;
    if (ports === this.#opts.ports) this.#hotDsts++;
    if (ports > this.#maxPorts) this.#maxPorts = ports;
    const s = this.#svc[k] as number;
    const hosts = (this.#svcHosts[s] as number) + 1;
    this.#svcHosts[s] = hosts;
    if (hosts === this.#opts.hosts) this.#hotSvcs++;
    if (hosts > this.#maxHosts) this.#maxHosts = hosts;
  }

  #leave(k: number): void {
    const t = this.#target[k] as number;
    if (this.#est[k] === 1) {
      const est = (this.#targetEst[t] as number) - 1;
      this.#targetEst[t] = est;
      if (est === 0) this.#estTargets--;
    }
    const left = (this.#targetFlows[t] as number) - 1;
    this.#targetFlows[t] = left;
    if (left !== 0) return;
    this.#targets--;
    const d = this.#dst[k] as number;
    const ports = this.#dstPorts[d] as number;
    this.#dstPorts[d] = ports - 1;
    if (ports === this.#opts.ports) this.#hotDsts--;
    const s = this.#svc[k] as number;
    const hosts = this.#svcHosts[s] as number;
    this.#svcHosts[s] = hosts - 1;
    if (hosts === this.#opts.hosts) this.#hotSvcs--;
  }
}
