// fast-check generators of CtEvents and their parts, shared by every test folder.
import fc from 'fast-check';
import type { Counters, CtEvent, EventTypeCode, Tuple } from '../../journal/event.js';

/** 2200-01-01T00:00:00Z in µs since the epoch: the latest time an event may carry. */
export const MAX_TIME_US = Date.UTC(2200, 0, 1) * 1000;

/** Protocols whose tuples carry ports (TCP, UDP, DCCP, SCTP, UDP-Lite). */
export const PORT_PROTOS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);

export interface ArbOptions {
  /**
   * Draw addresses, ports, ICMP fields and status from small pools so that many events share a
   * flow key (what the flow-table properties need); otherwise draw from the whole domain.
   */
  small?: boolean;
  /** Protocol numbers to draw from; default: mostly TCP/UDP/ICMP/ICMPv6, sometimes any 0–255. */
  protos?: readonly number[];
  /** Families to draw from; default both. */
  families?: readonly (4 | 6)[];
}

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

// Pools chosen so that numeric and byte-wise orders differ from little-endian or string order.
const SMALL_V4 = [
  [10, 0, 0, 1],
  [10, 0, 0, 2],
  [10, 0, 1, 0],
  [9, 255, 255, 255],
  [192, 168, 100, 118],
  [192, 168, 100, 9],
].map((b) => Uint8Array.from(b));
const SMALL_V6 = [
  '20010db8000000000000000000000001',
  '20010db8000000000000000000000010',
  '20010db8000100000000000000000000',
  '00000000000000000000ffff0a000001',
  'fe800000000000000000000000000001',
  '00000000000000000000000000000001',
].map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
const SMALL_PORTS = [0, 22, 53, 443, 1023, 1024, 1025, 33000, 65535];

/** An IPv4 address: 4 bytes in network order. */
export function arbIPv4(): fc.Arbitrary<Uint8Array> {
  return fc.uint8Array({ minLength: 4, maxLength: 4 });
}

/**
 * An IPv6 address (16 bytes) biased towards the shapes text formatting must get right: runs of
 * zero groups, IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms.
 */
export function arbIPv6(): fc.Arbitrary<Uint8Array> {
  const group = fc.oneof(fc.constant(0), fc.constant(0xffff), u16);
  const fromGroups = fc.array(group, { minLength: 8, maxLength: 8 }).map((gs) => {
    const b = new Uint8Array(16);
    gs.forEach((g, i) => {
      b[2 * i] = g >> 8;
      b[2 * i + 1] = g & 0xff;
    });
    return b;
  });
  const embedded = (prefix: number[]) =>
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((v4) => Uint8Array.from([...prefix, ...v4]));
  return fc.oneof(
    { arbitrary: fromGroups, weight: 4 },
    { arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }), weight: 2 },
    { arbitrary: embedded([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), weight: 1 },
    { arbitrary: embedded([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), weight: 1 },
  );
}

/** An address of the family: whole domain, or one of a few (copied, so tests may not alias). */
export function arbAddress(family: 4 | 6, small = false): fc.Arbitrary<Uint8Array> {
  if (small) return fc.constantFrom(...(family === 4 ? SMALL_V4 : SMALL_V6)).map((a) => a.slice());
  return family === 4 ? arbIPv4() : arbIPv6();
}

function arbPort(small: boolean): fc.Arbitrary<number> {
  return small ? fc.constantFrom(...SMALL_PORTS) : u16;
}

/**
 * One direction of a connection for the protocol: ports only for port protocols, ICMP type,
 * code and id only for ICMP/ICMPv6, zeros otherwise (as journal/event.ts defines them).
 */
export function arbTuple(family: 4 | 6, proto = 6, opts: { small?: boolean } = {}) {
  const small = opts.small ?? false;
  const hasPorts = PORT_PROTOS.has(proto);
  const isIcmp = proto === 1 || proto === 58;
  const zero = fc.constant(0);
  return fc
    .record({
      src: arbAddress(family, small),
      dst: arbAddress(family, small),
      sport: hasPorts ? arbPort(small) : zero,
      dport: hasPorts ? arbPort(small) : zero,
      icmpType: isIcmp ? (small ? fc.constantFrom(0, 3, 8, 128) : fc.nat(255)) : zero,
      icmpCode: isIcmp ? (small ? fc.constantFrom(0, 1) : fc.nat(255)) : zero,
      icmpId: isIcmp ? u16 : zero,
    })
    .map((t): Tuple => t);
}

/** The reply tuple of a connection without NAT: the original one turned around. */
export function inverseTuple(t: Tuple): Tuple {
  return {
    src: t.dst.slice(),
    dst: t.src.slice(),
    sport: t.dport,
    dport: t.sport,
    icmpType: t.icmpType,
    icmpCode: t.icmpCode,
    icmpId: t.icmpId,
  };
}

export function arbCounters(): fc.Arbitrary<Counters> {
  return fc.record({ origPackets: u53, origBytes: u53, replyPackets: u53, replyBytes: u53 });
}

/** Conntrack status words: common combinations, SEEN_REPLY set or not, or any u32. */
export function arbStatus(small = false): fc.Arbitrary<number> {
  const common = fc.constantFrom(0x0, 0x2, 0x8, 0xa, 0xe, 0x208, 0x20e, 0x188);
  return small ? common : fc.oneof(common, u32);
}

function arbProto(opts: ArbOptions): fc.Arbitrary<number> {
  if (opts.protos !== undefined) return fc.constantFrom(...opts.protos);
  return fc.oneof(
    { arbitrary: fc.constantFrom(6, 17, 1, 58), weight: 4 },
    { arbitrary: fc.nat(255), weight: 1 },
  );
}

/**
 * A CtEvent with every optional field present or absent (absent keys are really absent), any
 * protocol, u32 ids/marks, 16-bit zones, times up to 2200 in µs and counters up to 2^53-1.
 * The reply tuple is the inverse of the original one (no NAT) or an independent one (NAT);
 * only TCP events may carry tcpState.
 */
export function arbEvent(opts: ArbOptions = {}): fc.Arbitrary<CtEvent> {
  const small = opts.small ?? false;
  const family = fc.constantFrom(...(opts.families ?? ([4, 6] as const)));
  return fc
    .tuple(family, arbProto(opts))
    .chain(([fam, proto]) =>
      fc.record(
        {
          type: fc.constantFrom(1, 2, 3, 4).map((t) => t as EventTypeCode),
          family: fc.constant(fam),
          proto: fc.constant(proto),
          status: arbStatus(small),
          id: u32,
          time: fc.integer({ min: 0, max: MAX_TIME_US }),
          timeKernel: fc.boolean(),
          start: fc.integer({ min: 0, max: MAX_TIME_US }),
          orig: arbTuple(fam, proto, { small }),
          reply: arbTuple(fam, proto, { small }),
          tcpState: fc.nat(10),
          mark: fc.integer({ min: 1, max: 0xffffffff }),
          zone: fc.integer({ min: 1, max: 0xffff }),
          counters: arbCounters(),
        },
        { requiredKeys: ['type', 'family', 'proto', 'status', 'id', 'time', 'timeKernel', 'orig'] },
      ),
    )
    .map((e) => {
      const { reply, tcpState, ...rest } = e;
      const ev: CtEvent = { ...rest, reply: reply ?? inverseTuple(e.orig) };
      // Only TCP events carry a TCP state.
      if (tcpState !== undefined && e.proto === 6) ev.tcpState = tcpState;
      return ev;
    });
}

/**
 * Events that mostly land in the six flow tables and often share a key: a few connections, each
 * seen many times with other event types, status words and (TCP/UDP) source ports.
 */
export function arbFlowEvents(
  opts: { minLength?: number; maxLength?: number } = {},
): fc.Arbitrary<CtEvent[]> {
  const connections = fc.array(arbEvent({ small: true }), { minLength: 1, maxLength: 8 });
  return connections.chain((bases) =>
    fc
      .array(
        fc.record({
          base: fc.constantFrom(...bases),
          type: fc.constantFrom(1, 2, 3, 4).map((t) => t as EventTypeCode),
          status: arbStatus(true),
          sport: fc.option(arbPort(true), { nil: undefined }),
        }),
        { minLength: opts.minLength ?? 0, maxLength: opts.maxLength ?? 60 },
      )
      .map((picks) =>
        picks.map(({ base, type, status, sport }): CtEvent => {
          const moved = sport !== undefined && PORT_PROTOS.has(base.proto);
          return { ...base, type, status, orig: moved ? { ...base.orig, sport } : base.orig };
        }),
      ),
  );
}

/**
 * Runs a property as one tap assertion: fast-check shrinks a failure (assertions inside the
 * property should be node:assert ones, which throw) and tap shows the counterexample.
 */
export function checkProperty<Ts>(
  t: { pass(msg: string): void; fail(msg: string): void },
  property: fc.IProperty<Ts>,
  params: fc.Parameters<Ts> = {},
): void {
  const details = fc.check(property, params);
  if (details.failed) t.fail(fc.defaultReportMessage(details) ?? 'property failed');
  else t.pass(`property held for ${details.numRuns} runs`);
}
