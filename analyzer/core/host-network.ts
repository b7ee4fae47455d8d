// What a recording host's addresses and routes say about a packet: the interface it leaves by and what kind of address it goes to.

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
