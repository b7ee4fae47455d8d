// ct-analyze rules: observed addresses grouped into prefixes only where enough of each prefix was seen, and never over an address that failed.
import { bitsOf, type Cidr } from '../core/prefix.js';

export interface DensityOptions {
  /** The widest prefix allowed (e.g. 24). */
  readonly widest: number;
  /** The unit every address stands for: 32 (IPv4 hosts), 64 (IPv6: privacy addresses rotate inside a /64). */
  readonly unit: number;
  /** Share of a prefix's units that must have been observed for it to stand for them, in (0, 1]. */
  readonly minDensity: number;
}

const compare = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** The unit an address belongs to, as the unit prefix's network number. */
export function unitOf(address: bigint, family: 4 | 6, unit: number): bigint {
  const host = BigInt(bitsOf(family) - unit);
  return (address >> host) << host;
}

/** Whether a sorted array holds a value in [lo, hi]. */
function anyWithin(sorted: readonly bigint[], lo: bigint, hi: bigint): boolean {
  let [a, b] = [0, sorted.length];
  while (a < b) {
    const mid = (a + b) >> 1;
    if ((sorted[mid] as bigint) < lo) a = mid + 1;
    else b = mid;
  }
  return a < sorted.length && (sorted[a] as bigint) <= hi;
}

/**
 * The prefixes standing for the observed units: from the widest allowed down, a prefix is taken
 * when at least `minDensity` of its units, and at least two, were observed and it holds no
 * avoided unit; otherwise
 * its halves are tried, down to the unit itself, which always stands for itself. Every observed
 * unit is covered exactly once; no avoided unit is covered unless it was observed too. Sorted.
 */
export function densePrefixes(
  observed: Iterable<bigint>,
  family: 4 | 6,
  opts: DensityOptions,
  avoid: Iterable<bigint> = [],
): Cidr[] {
  const bits = bitsOf(family);
  const units = [...new Set([...observed].map((a) => unitOf(a, family, opts.unit)))].sort(compare);
  const seen = new Set(units);
  const avoided = [...new Set([...avoid].map((a) => unitOf(a, family, opts.unit)))]
    .filter((u) => !seen.has(u))
    .sort(compare);
  const widest = Math.min(opts.widest, opts.unit);
  const out: Cidr[] = [];
  // `group` holds the sorted units inside network/prefix.
  const cover = (network: bigint, prefix: number, group: bigint[]) => {
    const span = 1n << BigInt(bits - prefix);
    const capacity = 2 ** (opts.unit - prefix);
    // Two units at least: one host never stands for its /31 (or IPv6 /63) mate.
    const dense = group.length >= 2 && group.length >= opts.minDensity * capacity;
    if (prefix === opts.unit || (dense && !anyWithin(avoided, network, network + span - 1n))) {
      out.push({ family, network, prefix });
      return;
    }
    const half = network + span / 2n;
    const low = group.filter((u) => u < half);
    const high = group.filter((u) => u >= half);
    if (low.length > 0) cover(network, prefix + 1, low);
    if (high.length > 0) cover(half, prefix + 1, high);
  };
  const shift = BigInt(bits - widest);
  let i = 0;
  while (i < units.length) {
    const network = ((units[i] as bigint) >> shift) << shift;
    const group: bigint[] = [];
    while (i < units.length && ((units[i] as bigint) >> shift) << shift === network) {
      group.push(units[i] as bigint);
      i++;
    }
    cover(network, widest, group);
  }
  return out;
}
