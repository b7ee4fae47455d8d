// What an event's address translation means for its flow: which translation is shown, and when "and others".
// The journal computes the raw fact (journal/event-columns.ts `natBits`: the reply tuple is not the
// original's inverse), since its scanner fills the bits while reading and journal/ may not import
// analyzer/; what that fact means for a flow (the policy) lives here, once for add() and addColumns().
import { NAT_DST, NAT_SRC, wordsAddress } from '../../journal/event-columns.js';

/** One translation: the first seen, and whether others were seen too. */
export interface NatTarget {
  readonly address: Uint8Array;
  /** Translated port (0 for ICMP). */
  readonly port: number;
  /** Connections of the flow were also translated to other addresses or ports. */
  readonly more: boolean;
}

export interface FlowNat {
  dst?: NatTarget;
  src?: NatTarget;
}

interface NatSeen {
  words: Uint32Array;
  port: number;
  more: boolean;
}

/** The translations of a table's flows (few flows have any), by flow index. */
export class NatLog {
  readonly #seen = new Map<number, { dst?: NatSeen; src?: NatSeen }>();

  /**
   * Notes an event of `flow` whose NAT bits are `bits`: DNAT/redirect (NAT_DST) sent it to the
   * reply's source rsrc[at…at+3]:rsport, SNAT/masquerade (NAT_SRC) made its source the reply's
   * destination rdst[at…]:rdport.
   */
  note(
    flow: number,
    bits: number,
    rsrc: Uint32Array,
    rdst: Uint32Array,
    at: number,
    rsport: number,
    rdport: number,
  ): void {
    if (bits & NAT_DST) this.#note(flow, 'dst', rsrc, at, rsport);
    if (bits & NAT_SRC) this.#note(flow, 'src', rdst, at, rdport);
  }

  /** Where the flow's destination was first translated to (its words), if it was. */
  dstWords(flow: number): Uint32Array | undefined {
    return this.#seen.get(flow)?.dst?.words;
  }

  /** The flow's translations as a Flow shows them, or undefined when there were none. */
  of(flow: number, alen: 4 | 16): FlowNat | undefined {
    const seen = this.#seen.get(flow);
    if (seen === undefined) return undefined;
    const nat: FlowNat = {};
    if (seen.dst) nat.dst = target(seen.dst, alen);
    if (seen.src) nat.src = target(seen.src, alen);
    return nat;
  }

  /** Keeps the first translation seen of each kind, and whether another one came later. */
  #note(flow: number, kind: 'dst' | 'src', words: Uint32Array, at: number, port: number): void {
    const nat = this.#seen.get(flow) ?? {};
    const seen = nat[kind];
    if (seen === undefined) {
      nat[kind] = { words: words.slice(at, at + 4), port, more: false };
      this.#seen.set(flow, nat);
    } else if (!seen.more) {
      // A masquerade picks a new source port per connection: for SNAT only the address counts.
      const samePort = kind === 'src' || seen.port === port;
      const same = samePort && seen.words.every((w, k) => w === words[at + k]);
      if (!same) seen.more = true;
    }
  }
}

function target(seen: NatSeen, alen: 4 | 16): NatTarget {
  return { address: wordsAddress(seen.words, 0, alen), port: seen.port, more: seen.more };
}
