// Host addresses from a journal's checkpoints, kept once each: memory bounded by distinct addresses, not checkpoints.
import type { AddressSet, HostAddress } from './format.js';
import { Damage } from './validate.js';

/**
 * Distinct host addresses one journal's checkpoints may bring: 16 sets of the most a set may
 * hold (MAX_ADDRESSES). No host has that many; past it the journal is damaged or forged, and
 * the addresses would cost memory with no bound but the file's size (~0.3 KB each).
 */
export const MAX_DISTINCT_ADDRESSES = 65_536;

/**
 * One object per distinct host address (interface, family, prefix, bytes), their bytes packed
 * in shared slabs: a journal may repeat a set of 4,096 addresses in every checkpoint, and each
 * decoded copy (an object, its own 16-byte buffer, its interface name) costs ~0.4 KB.
 */
export class AddressInterning {
  /**
   * Per interface: its name (one string, not one per address) and each key (prefix, then the
   * address bytes) to the one object.
   */
  readonly #byName = new Map<string, { ifname: string; byKey: Map<string, HostAddress> }>();
  #count = 0;
  #slab = new Uint8Array(0);
  #used = 0;

  set(s: AddressSet): AddressSet {
    return { time: s.time, addresses: s.addresses.map((a) => this.#address(a)) };
  }

  #address(a: HostAddress): HostAddress {
    const bytes = a.address;
    // The length of the bytes is the family's.
    const key = String.fromCharCode(a.prefix, ...bytes);
    let iface = this.#byName.get(a.ifname);
    if (iface === undefined) {
      iface = { ifname: a.ifname, byKey: new Map() };
      this.#byName.set(a.ifname, iface);
    }
    const same = iface.byKey.get(key);
    if (same !== undefined) return same;
    if (++this.#count > MAX_DISTINCT_ADDRESSES) {
      throw new Damage(
        `checkpoint addresses bring the host's distinct addresses past ${MAX_DISTINCT_ADDRESSES}, more than any host has`,
      );
    }
    if (this.#used + bytes.length > this.#slab.length) {
      this.#slab = new Uint8Array(64 * 1024);
      this.#used = 0;
    }
    const address = this.#slab.subarray(this.#used, this.#used + bytes.length);
    address.set(bytes);
    this.#used += bytes.length;
    const one: HostAddress = { ifname: iface.ifname, family: a.family, address, prefix: a.prefix };
    iface.byKey.set(key, one);
    return one;
  }
}
