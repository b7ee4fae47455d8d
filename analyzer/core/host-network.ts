// What a recording host's addresses and routes say about a packet: the interface it leaves by and what kind of address it goes to.
import { isLoopback } from './direction.js';

/** fib's `type` (libnftables-json, fib `type` result), as the recorded addresses decide it. */
export type AddressType =
  | 'local'
  | 'unicast'
  | 'broadcast'
  | 'anycast'
  | 'multicast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'unknown';

/**
 * The recording host's network as a journal records it (its addresses and, from ct-record
 * with route recording, its routes): what decides interfaces and address types.
 */
export interface HostView {
  /**
   * The interface a packet to `address` leaves by: `lo` for a local address, else the longest
   * matching route's (or connected prefix's) device; undefined when nothing recorded decides.
   */
  routeDevice(address: Uint8Array): string | undefined;
  /** local (an address of the host), broadcast, multicast, unicast, …; unknown when not decided. */
  addressType(address: Uint8Array): AddressType;
}

/** What a host's recorded network is made of: its addresses and routes (HostAddress, HostRoute). */
export interface NetworkAddress {
  readonly ifname: string;
  readonly family: 4 | 6;
  readonly address: Uint8Array;
  readonly prefix: number;
}

export interface NetworkRoute {
  readonly family: 4 | 6;
  readonly dst: Uint8Array;
  readonly prefix: number;
  readonly dev?: string;
  readonly type: string;
  readonly metric: number;
}

/** Route types the kernel gives fib's answer for (a `throw` or a later writer's token: unknown). */
const ROUTE_ANSWER: ReadonlySet<string> = new Set<AddressType>([
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
]);

/** What one (prefix, destination) leads to: the lowest metric's devices and types. */
interface Entry {
  metric: number;
  devs: Set<string | undefined>;
  types: Set<string>;
}

/** Per family, per prefix length (longest first), destination bytes (latin1 key) → entry. */
type Table = { prefix: number; byDst: Map<string, Entry> }[];

/**
 * A host's network built from its recorded addresses and routes. Given several sets (the
 * addresses or routes changed during the recording) it answers for their union: a flow may have
 * lived under any of them. An address that was the host's at some time is local; each route set
 * is looked up on its own (a metric only competes within its set) and where the sets' answers
 * differ (a route moved from eth0 to eth1) the answer is undefined or unknown, never one of them.
 */
export class HostNetwork implements HostView {
  readonly #local = new Set<string>();
  readonly #broadcast = new Set<string>();
  /** One table per distinct route set, keyed by its routes' ids (see addRoutes). */
  readonly #routeSets = new Map<string, { 4: Table; 6: Table }>();
  readonly #connected: { 4: Table; 6: Table } = { 4: [], 6: [] };
  readonly #ids = new WeakMap<object, number>();
  #nextId = 0;
  /** Addresses already added (the reader gives an address that several sets hold as one object). */
  readonly #seen = new WeakSet<object>();
  #addresses = 0;

  constructor(addresses: Iterable<NetworkAddress> = [], routes?: Iterable<NetworkRoute>) {
    this.addAddresses(addresses);
    if (routes !== undefined) this.addRoutes(routes);
  }

  /** More addresses of the host (another set, another journal): a union. */
  addAddresses(addresses: Iterable<NetworkAddress>): void {
    for (const a of addresses) {
      if (this.#seen.has(a)) continue;
      this.#seen.add(a);
      this.#addresses++;
      if (a.address.length !== (a.family === 4 ? 4 : 16)) continue;
      this.#local.add(key(a.address));
      const bits = a.family === 4 ? 32 : 128;
      if (a.prefix > bits) continue;
      const network = masked(a.address, a.prefix);
      // The interface's connected prefix, as the kernel's `proto kernel scope link` route.
      put(this.#connected[a.family], a.prefix, network, 0, a.ifname, 'unicast');
      // A /31 or /32 has no broadcast address (RFC 3021); IPv6 has none at all.
      if (a.family === 4 && a.prefix <= 30)
        this.#broadcast.add(key(lastAddress(network, a.prefix)));
    }
  }

  /** Another whole route set of the host (its routes at some time); a set seen before is ignored. */
  addRoutes(routes: Iterable<NetworkRoute>): void {
    const list = [...routes].filter(
      (r) => r.dst.length === (r.family === 4 ? 4 : 16) && r.prefix <= r.dst.length * 8,
    );
    // By identity: a journal reader gives a route that several sets hold as one object, so a
    // set that flaps back costs a lookup, not a table (a route built twice just adds a twin).
    const id = list
      .map((r) => this.#idOf(r))
      .sort((a, b) => a - b)
      .join(',');
    if (this.#routeSets.has(id)) return;
    const tables: { 4: Table; 6: Table } = { 4: [], 6: [] };
    for (const r of list) {
      put(tables[r.family], r.prefix, masked(r.dst, r.prefix), r.metric, r.dev, r.type);
    }
    this.#routeSets.set(id, tables);
  }

  /** Whether any address of the host was recorded (else only loopback is known local). */
  get hasAddresses(): boolean {
    return this.#addresses > 0;
  }

  /** Whether any route set was recorded (else connected prefixes alone decide devices). */
  get hasRoutes(): boolean {
    return this.#routeSets.size > 0;
  }

  #idOf(r: object): number {
    let id = this.#ids.get(r);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(r, id);
    }
    return id;
  }

  /** The route sets' answers for `address`, joined; undefined when no set has a route for it. */
  #route(family: 4 | 6, address: Uint8Array): Entry | undefined {
    let joined: Entry | undefined;
    for (const tables of this.#routeSets.values()) {
      const e = lookup(tables[family], address);
      if (e === undefined) continue;
      if (joined === undefined)
        joined = { metric: e.metric, devs: new Set(e.devs), types: new Set(e.types) };
      else {
        for (const d of e.devs) joined.devs.add(d);
        for (const t of e.types) joined.types.add(t);
      }
    }
    return joined;
  }

  routeDevice(address: Uint8Array): string | undefined {
    const family = familyOf(address);
    if (family === undefined) return undefined;
    if (this.#isLocal(address)) return 'lo';
    const e = this.#route(family, address) ?? lookup(this.#connected[family], address);
    // A local route (AnyIP: a prefix the host answers for) delivers to the host itself.
    if (e !== undefined && e.types.size === 1 && e.types.has('local')) return 'lo';
    // Several devices (equal routes, or sets that disagree), or a route without one (blackhole).
    if (e === undefined || e.devs.size !== 1) return undefined;
    return [...e.devs][0];
  }

  addressType(address: Uint8Array): AddressType {
    const family = familyOf(address);
    if (family === undefined) return 'unknown';
    if (this.#isLocal(address)) return 'local';
    if (family === 4) {
      if (address.every((b) => b === 255) || this.#broadcast.has(key(address))) return 'broadcast';
      if (((address[0] as number) & 0xf0) === 0xe0) return 'multicast';
    } else if (address[0] === 0xff) {
      return 'multicast';
    }
    const route = this.#route(family, address);
    if (route !== undefined) {
      if (route.types.size !== 1) return 'unknown';
      const type = [...route.types][0] as string;
      return ROUTE_ANSWER.has(type) ? (type as AddressType) : 'unknown';
    }
    return lookup(this.#connected[family], address) !== undefined ? 'unicast' : 'unknown';
  }

  #isLocal(address: Uint8Array): boolean {
    return this.#local.has(key(address)) || isLoopback(address);
  }
}

function familyOf(address: Uint8Array): 4 | 6 | undefined {
  return address.length === 4 ? 4 : address.length === 16 ? 6 : undefined;
}

function key(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** The first `prefix` bits of `address`, the rest zero. */
function masked(address: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(address.length);
  for (let i = 0; i < address.length; i++) {
    const keep = Math.min(8, Math.max(0, prefix - 8 * i));
    out[i] = (address[i] as number) & ((0xff00 >> keep) & 0xff);
  }
  return out;
}

/** The prefix's last address: its IPv4 broadcast address. */
function lastAddress(network: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(network);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, prefix - 8 * i));
    out[i] = (out[i] as number) | (0xff >> keep);
  }
  return out;
}

/** Adds a route to a table: a lower metric replaces what the prefix led to, an equal one joins it. */
function put(
  table: Table,
  prefix: number,
  dst: Uint8Array,
  metric: number,
  dev: string | undefined,
  type: string,
): void {
  let level = table.find((l) => l.prefix === prefix);
  if (level === undefined) {
    level = { prefix, byDst: new Map() };
    table.push(level);
    table.sort((a, b) => b.prefix - a.prefix);
  }
  const k = key(dst);
  const e = level.byDst.get(k);
  if (e === undefined || metric < e.metric) {
    level.byDst.set(k, { metric, devs: new Set([dev]), types: new Set([type]) });
  } else if (metric === e.metric) {
    e.devs.add(dev);
    e.types.add(type);
  }
}

/** The longest prefix of the table that holds `address`. */
function lookup(table: Table, address: Uint8Array): Entry | undefined {
  for (const level of table) {
    const e = level.byDst.get(key(masked(address, level.prefix)));
    if (e !== undefined) return e;
  }
  return undefined;
}
