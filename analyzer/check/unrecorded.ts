// ct-analyze check: rules for packets no recording can hold (untracked, invalid, ICMP errors, neighbour discovery): never called dead.

/**
 * ICMP types conntrack makes a connection of (nf_conntrack_proto_icmp.c, icmpv6.c: the requests
 * that may start one, and their replies): echo, timestamp, information and address mask; ICMPv6
 * echo and node information. Every other type (errors, router and neighbour discovery, MLD,
 * redirects) is related to a connection, invalid or untracked: never a flow of a recording.
 */
const FLOW_TYPES: Readonly<Record<'icmp' | 'icmpv6', ReadonlySet<string | number>>> = {
  icmp: new Set([
    'echo-reply',
    'echo-request',
    'timestamp-request',
    'timestamp-reply',
    'info-request',
    'info-reply',
    'address-mask-request',
    'address-mask-reply',
    0,
    8,
    13,
    14,
    15,
    16,
    17,
    18,
  ]),
  icmpv6: new Set(['echo-request', 'echo-reply', 128, 129, 139, 140]),
};

/** ct states conntrack never records: a packet it could not track, or was told not to. */
const NOT_RECORDED_STATES = new Set(['invalid', 'untracked']);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The values of a match's right side: a value, an array, or `{ set: […] }`; undefined for anything else. */
function valuesOf(right: unknown): (string | number)[] | undefined {
  const list =
    isObject(right) && Array.isArray(right.set)
      ? right.set
      : Array.isArray(right)
        ? right
        : [right];
  return list.every((v) => typeof v === 'string' || typeof v === 'number')
    ? (list as (string | number)[])
    : undefined;
}

/** Why one statement can only match packets no recording holds, or undefined. */
function statementReason(s: unknown): string | undefined {
  if (!isObject(s) || !isObject(s.match)) return undefined;
  const { op, left, right } = s.match;
  if (op !== '==' && op !== 'in') return undefined;
  const values = valuesOf(right);
  if (values === undefined || values.length === 0 || !isObject(left)) return undefined;
  if (isObject(left.ct) && left.ct.key === 'state') {
    return values.every((v) => NOT_RECORDED_STATES.has(String(v)))
      ? `ct state ${values.join(',')}: conntrack records no such packet`
      : undefined;
  }
  const p = left.payload;
  if (isObject(p) && p.field === 'type' && (p.protocol === 'icmp' || p.protocol === 'icmpv6')) {
    const flowTypes = FLOW_TYPES[p.protocol];
    return values.every((v) => !flowTypes.has(v))
      ? `${p.protocol} type: errors, router and neighbour discovery and MLD are never connections of a recording`
      : undefined;
  }
  return undefined;
}

/** Statements that decide nothing about a packet (they count, limit, log) or end its walk. */
const UNCONDITIONAL = new Set(['counter', 'limit', 'log', 'accept', 'drop', 'reject']);

/**
 * Whether a rule matches every packet that reaches it (`counter reject`, `limit rate 10/minute
 * log prefix "…"`): at the end of a base chain, its closing verdict, which no recorded flow
 * reaching means that every one got an earlier verdict (a good sign, not a dead rule).
 */
export function isUnconditional(expr: readonly unknown[]): boolean {
  return (
    expr.length > 0 &&
    expr.every((s) => isObject(s) && Object.keys(s).every((k) => UNCONDITIONAL.has(k)))
  );
}

/**
 * Why a rule (its statements in nft's JSON) can only match packets a recording never holds, so
 * that no recorded flow hitting it says nothing about it; undefined for every other rule.
 */
export function unrecordedReason(expr: readonly unknown[]): string | undefined {
  for (const s of expr) {
    const reason = statementReason(s);
    if (reason !== undefined) return reason;
  }
  return undefined;
}
