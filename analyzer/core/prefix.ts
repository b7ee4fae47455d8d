// Address prefixes and port ranges as numbers: what rules write and check matches flows against.
import { formatAddress, parseAddress } from './address.js';

/** An address prefix; a /32 (/128) is one address. */
export interface Cidr {
  readonly family: 4 | 6;
  /** The network address as an unsigned number (host bits zero). */
  readonly network: bigint;
  readonly prefix: number;
}

/** An inclusive destination port range; from === to for one port. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export const bitsOf = (family: 4 | 6) => (family === 4 ? 32 : 128);

export function addressNumber(b: Uint8Array): bigint {
  let n = 0n;
  for (const byte of b) n = (n << 8n) | BigInt(byte);
  return n;
}

export function numberAddress(n: bigint, family: 4 | 6): Uint8Array {
  const out = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** `10.0.0.0/28`, or the plain address for a /32 (/128). */
export function formatCidr(c: Cidr): string {
  const text = formatAddress(numberAddress(c.network, c.family));
  return c.prefix === bitsOf(c.family) ? text : `${text}/${c.prefix}`;
}

/** Whether the prefix holds the address (same family, same leading `prefix` bits). */
export function cidrContains(c: Cidr, family: 4 | 6, address: bigint): boolean {
  if (c.family !== family) return false;
  const shift = BigInt(bitsOf(family) - c.prefix);
  return address >> shift === c.network >> shift;
}

/** `10.0.0.0/8`, `2001:db8::1`, `10.0.0.1`: a prefix, or undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', len, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const bytes = parseAddress(addr);
  if (bytes === undefined) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const prefix =
    len === undefined
      ? bits
      : /^\d{1,6}$/.test(len) && Number(len) <= bits
        ? Number(len)
        : undefined;
  if (prefix === undefined) return undefined;
  const host = (1n << BigInt(bits - prefix)) - 1n;
  return { family, network: addressNumber(bytes) & ~host, prefix };
}
