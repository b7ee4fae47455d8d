// Addresses as text and back: network-order bytes printed as inet_ntop(3) prints them, and the one parser.
import { isIPv6 } from 'node:net';
import { CtError, Exit } from '../../common/errors.js';

/** Dotted quad of the 4 bytes at `offset`. */
export function formatIPv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/**
 * RFC 5952 text of a 16-byte address: lowercase hex without leading zeros, the longest run of
 * two or more zero groups (the first of equal runs) written `::`. Like inet_ntop, the last 32
 * bits are a dotted quad for IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d)
 * addresses, where the zero run is exactly the first 5 groups before ffff, or the first 6.
 */
export function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestAt = -1;
  const embedsV4 = bestAt === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff));
  const last = embedsV4 ? 6 : 8;
  let out = '';
  for (let i = 0; i < last; i++) {
    if (i === bestAt) {
      // The group before the run already wrote one ':'.
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += (g[i] as number).toString(16);
    if (i < 7) out += ':';
  }
  return embedsV4 ? out + formatIPv4(b, 12) : out;
}

/** The text form of a 4- or 16-byte address. */
export function formatAddress(b: Uint8Array): string {
  return b.length === 4 ? formatIPv4(b) : formatIPv6(b);
}

/**
 * An address as 4 or 16 network-order bytes, or undefined when the text is not one: exactly the
 * texts node:net's isIPv4 / isIPv6 accept (dotted quad without leading zeros; IPv6 compressed,
 * full, any case, with an embedded IPv4 such as ::ffff:192.0.2.1), but no zone id (`%eth0`:
 * a flow's address has none), and no prefix length or whitespace (isIP rejects those too).
 * The one address parser: import, check, redact, the recorder and the tests use it.
 */
export function parseAddress(text: string): Uint8Array | undefined {
  const a = ipv4(text);
  if (a !== undefined) return a;
  if (text.includes('%') || !isIPv6(text)) return undefined;
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 !== null) {
    const [a = 0, b = 0, c = 0, d = 0] = (v4[1] as string).split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, k) => {
    const n = Number.parseInt(g, 16);
    out[2 * k] = n >> 8;
    out[2 * k + 1] = n & 0xff;
  });
  return out;
}

/**
 * Dotted-quad IPv4 exactly as net.isIPv4 accepts it (four decimal octets ≤ 255, no leading
 * zeros), by hand: four addresses a line made it the parser's hottest call.
 */
function ipv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let k = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || k === 3) return undefined;
      out[k++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && n === 0) return undefined;
      n = n * 10 + c - 0x30;
      if (++digits > 3 || n > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || k !== 3) return undefined;
  out[3] = n;
  return out;
}

/** parseAddress for text that must be an address: a usage error naming it otherwise. */
export function addressBytes(text: string, what = 'address'): Uint8Array {
  const b = parseAddress(text);
  if (b === undefined) {
    throw new CtError(
      'EUSAGE',
      `${what} ${JSON.stringify(text)} is not an IPv4 or IPv6 address: write one address such as 192.0.2.1 or 2001:db8::1, without a /prefix, %zone or spaces`,
      { exit: Exit.USAGE },
    );
  }
  return b;
}
