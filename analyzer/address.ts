// Addresses as text, from network-order bytes, exactly as inet_ntop(3) prints them.

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
