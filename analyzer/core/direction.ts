// Which way a flow crosses its hosts (input, output, forward, local), from the addresses their journals record.

/**
 * input: to a local address (after any DNAT: a redirect to the host is input, a DNAT to
 * another host is forward); output: from a local address; local: both; forward: neither.
 */
export type Direction = 'forward' | 'input' | 'local' | 'output';

/** 127.0.0.0/8 and ::1: the host's own whatever its interface list says. */
export function isLoopback(address: Uint8Array): boolean {
  if (address.length === 4) return address[0] === 127;
  return address.every((b, i) => b === (i === 15 ? 1 : 0));
}

function hex(address: Uint8Array): string {
  return Buffer.from(address.buffer, address.byteOffset, address.byteLength).toString('hex');
}

/** The local addresses of each host id (from the journal headers). */
export class HostAddresses {
  readonly #local = new Map<number, Set<string>>();

  /** No host's addresses are known: no flow has a direction. */
  get empty(): boolean {
    return this.#local.size === 0;
  }

  /** Adds addresses of a host (one id may get several calls: a union). */
  add(host: number, addresses: readonly { address: Uint8Array }[]): void {
    const set = this.#local.get(host) ?? new Set<string>();
    for (const a of addresses) set.add(hex(a.address));
    this.#local.set(host, set);
  }

  /**
   * One entry per distinct answer over the hosts whose addresses are known, sorted; undefined
   * when none is. `dst` is the destination after any DNAT.
   */
  directions(src: Uint8Array, dst: Uint8Array, hosts: readonly number[]): Direction[] | undefined {
    const [s, d] = [hex(src), hex(dst)];
    const found = new Set<Direction>();
    for (const h of hosts) {
      const local = this.#local.get(h);
      if (local === undefined) continue;
      const fromHere = local.has(s) || isLoopback(src);
      const toHere = local.has(d) || isLoopback(dst);
      found.add(fromHere && toHere ? 'local' : toHere ? 'input' : fromHere ? 'output' : 'forward');
    }
    return found.size === 0 ? undefined : [...found].sort();
  }
}
