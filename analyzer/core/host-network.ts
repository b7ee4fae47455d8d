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

/** Stands for "more than one": an entry (or the sets' answers joined) with several devices or types. */
const SEVERAL: unique symbol = Symbol('several');

/** What one (prefix, destination) leads to: the lowest metric's device and type, or SEVERAL. */
interface Entry {
  metric: number;
  /** The device all its routes name (undefined: routes without one, as a blackhole's). */
  dev: string | undefined | typeof SEVERAL;
  type: string | typeof SEVERAL;
}

/** One prefix length's destinations; a table lists only the lengths it has, longest first. */
type Table = { prefix: number; byDst: WordMap<Entry> }[];

/**
 * A host's network built from its recorded addresses and routes. Given several sets (the
 * addresses or routes changed during the recording) it answers for their union: a flow may have
 * lived under any of them. An address that was the host's at some time is local; each route set
 * is looked up on its own (a metric only competes within its set) and where the sets' answers
 * differ (a route moved from eth0 to eth1) the answer is undefined or unknown, never one of them.
 */
export class HostNetwork implements HostView {
  readonly #local = { 4: new WordMap<true>(32), 6: new WordMap<true>(128) };
  readonly #broadcast = new WordMap<true>(32);
  /** One table per distinct route set, keyed by its routes' ids (see addRoutes). */
  readonly #routeSets = new Map<string, { 4: Table; 6: Table }>();
  /** The same tables as a list: what a lookup walks. */
  readonly #sets: { 4: Table; 6: Table }[] = [];
  readonly #connected: { 4: Table; 6: Table } = { 4: [], 6: [] };
  /** Where #route joins the answers of several sets: read by its caller at once, never kept. */
  readonly #joined: Entry = { metric: 0, dev: undefined, type: 'unicast' };
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
      const words = wordsOf(a.address);
      this.#local[a.family].set(words, true);
      const bits = a.family === 4 ? 32 : 128;
      if (a.prefix > bits) continue;
      // The interface's connected prefix, as the kernel's `proto kernel scope link` route.
      put(this.#connected[a.family], a.prefix, words, 0, a.ifname, 'unicast');
      // A /31 or /32 has no broadcast address (RFC 3021); IPv6 has none at all.
      if (a.family === 4 && a.prefix <= 30) {
        words[0] = (words[0] as number) | ~maskOf(a.prefix);
        this.#broadcast.set(words, true);
      }
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
      put(tables[r.family], r.prefix, wordsOf(r.dst), r.metric, r.dev, r.type);
    }
    this.#routeSets.set(id, tables);
    this.#sets.push(tables);
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

  /**
   * The route sets' answers for the address in `words`, joined (a device or type they do not
   * all give is SEVERAL); undefined when no set has a route for it.
   */
  #route(family: 4 | 6, words: Int32Array): Entry | undefined {
    let found: Entry | undefined;
    for (let i = 0; i < this.#sets.length; i++) {
      const e = lookup((this.#sets[i] as { 4: Table; 6: Table })[family], words);
      if (e === undefined) continue;
      if (found === undefined) {
        found = e;
        continue;
      }
      if (found !== this.#joined) {
        this.#joined.metric = found.metric;
        this.#joined.dev = found.dev;
        this.#joined.type = found.type;
        found = this.#joined;
      }
      if (found.dev !== e.dev) found.dev = SEVERAL;
      if (found.type !== e.type) found.type = SEVERAL;
    }
    return found;
  }

  routeDevice(address: Uint8Array): string | undefined {
    const family = familyOf(address);
    if (family === undefined) return undefined;
    const words = wordsOf(address);
    if (this.#isLocal(family, address, words)) return 'lo';
    const e = this.#route(family, words) ?? lookup(this.#connected[family], words);
    // A local route (AnyIP: a prefix the host answers for) delivers to the host itself.
    if (e !== undefined && e.type === 'local') return 'lo';
    // Several devices (equal routes, or sets that disagree), or a route without one (blackhole).
    if (e === undefined || e.dev === SEVERAL) return undefined;
    return e.dev;
  }

  addressType(address: Uint8Array): AddressType {
    const family = familyOf(address);
    if (family === undefined) return 'unknown';
    const words = wordsOf(address);
    if (this.#isLocal(family, address, words)) return 'local';
    if (family === 4) {
      if (words[0] === -1 || this.#broadcast.get(words) === true) return 'broadcast';
      if ((words[0] as number) >>> 28 === 0xe) return 'multicast';
    } else if (address[0] === 0xff) {
      return 'multicast';
    }
    const route = this.#route(family, words);
    if (route !== undefined) {
      if (route.type === SEVERAL || !ROUTE_ANSWER.has(route.type)) return 'unknown';
      return route.type as AddressType;
    }
    return lookup(this.#connected[family], words) !== undefined ? 'unicast' : 'unknown';
  }

  #isLocal(family: 4 | 6, address: Uint8Array, words: Int32Array): boolean {
    return this.#local[family].get(words) === true || isLoopback(address);
  }
}

function familyOf(address: Uint8Array): 4 | 6 | undefined {
  return address.length === 4 ? 4 : address.length === 16 ? 6 : undefined;
}

/**
 * A lookup runs on an address's big-endian 32-bit words (one for IPv4, four for IPv6), read
 * once into this scratch array: no key string, no masked copy, nothing allocated per lookup.
 * Valid until the next wordsOf call; nothing here awaits in between.
 */
const WORDS = new Int32Array(4);

function wordsOf(address: Uint8Array): Int32Array {
  for (let i = 0, j = 0; j + 3 < address.length; i++, j += 4) {
    WORDS[i] =
      ((address[j] as number) << 24) |
      ((address[j + 1] as number) << 16) |
      ((address[j + 2] as number) << 8) |
      (address[j + 3] as number);
  }
  return WORDS;
}

/** The 32-bit mask of a word's first `bits` bits (a shift by 32 is a shift by 0 in JS). */
function maskOf(bits: number): number {
  return bits <= 0 ? 0 : -1 << (32 - Math.min(32, bits));
}

/**
 * Values keyed by an address's first `prefix` bits: nested Maps, one per word the prefix
 * reaches, the last word masked. Keys are int32s, which V8 hashes without allocating.
 */
class WordMap<V> {
  readonly #root = new Map<number, unknown>();
  readonly #last: number;
  readonly #mask: number;

  constructor(prefix: number) {
    this.#last = Math.max(0, Math.ceil(prefix / 32) - 1);
    this.#mask = maskOf(prefix - 32 * this.#last);
  }

  get(words: Int32Array): V | undefined {
    let node = this.#root;
    for (let i = 0; i < this.#last; i++) {
      const next = node.get(words[i] as number) as Map<number, unknown> | undefined;
      if (next === undefined) return undefined;
      node = next;
    }
    return node.get((words[this.#last] as number) & this.#mask) as V | undefined;
  }

  set(words: Int32Array, value: V): void {
    let node = this.#root;
    for (let i = 0; i < this.#last; i++) {
      let next = node.get(words[i] as number) as Map<number, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(words[i] as number, next);
      }
      node = next;
    }
    node.set((words[this.#last] as number) & this.#mask, value);
  }
}

/** Adds a route (dst in `words`) to a table: a lower metric replaces what the prefix led to, an equal one joins it. */
function put(
  table: Table,
  prefix: number,
  words: Int32Array,
  metric: number,
  dev: string | undefined,
  type: string,
): void {
  let level = table.find((l) => l.prefix === prefix);
  if (level === undefined) {
    level = { prefix, byDst: new WordMap(prefix) };
    table.push(level);
    table.sort((a, b) => b.prefix - a.prefix);
  }
  const e = level.byDst.get(words);
  if (e === undefined || metric < e.metric) {
    level.byDst.set(words, { metric, dev, type });
  } else if (metric === e.metric) {
    if (e.dev !== dev) e.dev = SEVERAL;
    if (e.type !== type) e.type = SEVERAL;
  }
}

/** The longest prefix of the table that holds the address in `words`. */
function lookup(table: Table, words: Int32Array): Entry | undefined {
  for (let i = 0; i < table.length; i++) {
    const e = (table[i] as Table[number]).byDst.get(words);
    if (e !== undefined) return e;
  }
  return undefined;
}
