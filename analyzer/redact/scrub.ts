// What redaction rewrites in a journal's content: event addresses, and the header, host
// address sets and gaps scrubbed of anything that could name the host.
import type { CtEvent, Tuple } from '../../journal/event.js';
import {
  type AddressSet,
  GapCause,
  type HostAddress,
  type JournalGap,
  type JournalHeader,
  type JournalHeaderInput,
} from '../../journal/format.js';
import { type AddressPseudonymizer, REDACT_SCHEME } from './pseudonym.js';

export function redactEvent(ev: CtEvent, p: AddressPseudonymizer): CtEvent {
  const tuple = (t: Tuple): Tuple => ({ ...t, src: p.map(t.src), dst: p.map(t.dst) });
  return { ...ev, orig: tuple(ev.orig), reply: tuple(ev.reply) };
}

/** The header option keys ct-record and import write: any other key is dropped with its value. */
const OPTION_KEYS: ReadonlySet<string> = new Set([
  'events',
  'new',
  'update',
  'destroy',
  'bufferSize',
  'reliable',
  'duration',
  'flushInterval',
  'table',
  'collapse',
  'snapshot',
  'enableEvents',
  'user',
  'filter',
  'protos',
  'mark',
  'value',
  'mask',
  'noLoopback',
  'force',
  'maxSize',
  'rotate',
  'enableTracking',
  'netns',
  'importedFrom',
  'tool',
  'file',
  'lines',
  'unreadable',
  'unstamped',
]);

/** Strings that say nothing about the host, by the key they sit under. */
const SAFE_STRINGS: Readonly<Record<string, RegExp>> = {
  collapse: /^(1024|none|ephemeral|\d{1,5}-\d{1,5})$/,
  tool: /^conntrack -(E|L|E and -L)$/,
  events: /^(new|update|destroy|snapshot)$/,
};

/**
 * Host addresses in byte order of what a journal holds: family, address bytes, prefix, then
 * interface name (UTF-16 order, the same in every version), so equal sets sort alike.
 */
export function compareHostAddresses(a: HostAddress, b: HostAddress): number {
  return (
    a.family - b.family ||
    Buffer.compare(a.address, b.address) ||
    a.prefix - b.prefix ||
    (a.ifname < b.ifname ? -1 : a.ifname > b.ifname ? 1 : 0)
  );
}

/** What replaces a string that might identify the host. */
export const SCRUBBED = 'redacted';

/** The header of the redacted journal, and the same scrubbing for what follows it. */
export class HeaderScrub {
  readonly #in: JournalHeader;
  readonly #p: AddressPseudonymizer;
  /** The host name and its labels (2+ characters), lowercase: no kept string may hold one. */
  readonly #secrets: string[];
  readonly #ifnames = new Set<string>();
  scrubbed = 0;
  readonly dropped: string[] = [];

  constructor(header: JournalHeader, p: AddressPseudonymizer) {
    this.#in = header;
    this.#p = p;
    const host = header.host.toLowerCase();
    this.#secrets = [host, ...host.split('.')].filter((s) => s.length >= 2);
  }

  get interfaces(): number {
    return this.#ifnames.size;
  }

  header(): JournalHeaderInput {
    const h = this.#in;
    const options = this.#options(h.options, '') as Record<string, unknown>;
    options.redacted = { scheme: REDACT_SCHEME, keyId: this.#p.keyId };
    const out: JournalHeaderInput = {
      tool: {
        name: this.#keep(h.tool.name, /^conntracker$/),
        version: this.#keep(
          h.tool.version,
          /^\d{1,4}\.\d{1,4}\.\d{1,4}([-+][0-9A-Za-z.-]{1,32})?$/,
        ),
      },
      host: this.#p.hostName(h.host),
      // A release such as 6.8.0-45-generic; a custom one may name the host or its owner.
      kernel: this.#keep(
        h.kernel,
        /^(\d{1,4}\.\d{1,4}(\.\d{1,6})?([-+.~_][0-9A-Za-z.+~_-]{1,60})?|unknown)$/,
      ),
      netns: this.#keep(h.netns, /^(net:\[\d{1,20}\]|unknown)$/),
      start: h.start,
      options,
      sysctls: { ...h.sysctls },
    };
    if (h.addresses !== undefined) out.addresses = this.#addresses(h.addresses);
    return out;
  }

  addressSet(set: AddressSet): AddressSet {
    return { time: set.time, addresses: this.#addresses(set.addresses) };
  }

  /** Gaps stay, with their counts; a cause other than an errno-like word becomes REDACTED. */
  gap(g: JournalGap): JournalGap {
    const known = Object.values(GapCause) as string[];
    const word = /^[A-Z][A-Z0-9_]{0,31}$/.test(g.cause) && !this.#mentionsHost(g.cause);
    return { ...g, cause: known.includes(g.cause) || word ? g.cause : 'REDACTED' };
  }

  /**
   * The set mapped, then sorted by what it holds now. Kept in the original order (ip addr's,
   * sorted by address or interface), the list would tell the order of the original addresses,
   * and with it, wherever two neighbours' pseudonyms are ordered the other way, one secret
   * Crypto-PAn bit of their common prefix.
   */
  #addresses(list: readonly HostAddress[]): HostAddress[] {
    const mapped = list.map((a) => {
      if (a.ifname !== 'lo') this.#ifnames.add(a.ifname);
      return {
        ifname: this.#p.interfaceName(a.ifname),
        family: a.family,
        address: this.#p.map(a.address),
        prefix: a.prefix,
      };
    });
    return mapped.sort(compareHostAddresses);
  }

  /** Holds the host name, one of its labels, or an IPv4 address in text. */
  #mentionsHost(s: string): boolean {
    const low = s.toLowerCase();
    return this.#secrets.some((w) => low.includes(w)) || /\d{1,3}(\.\d{1,3}){3}/.test(s);
  }

  #keep(s: string, safe: RegExp): string {
    if (safe.test(s) && !this.#mentionsHost(s)) return s;
    this.scrubbed++;
    return SCRUBBED;
  }

  /** Numbers, booleans and nil stay; strings only where SAFE_STRINGS allows; unknown keys go. */
  #options(v: unknown, key: string): unknown {
    if (typeof v === 'string') return this.#keep(v, SAFE_STRINGS[key] ?? /(?!)/);
    if (Array.isArray(v)) return v.map((x) => this.#options(x, key));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (OPTION_KEYS.has(k)) out[k] = this.#options(x, k);
        else this.dropped.push(key === '' ? k : `${key}.${k}`);
      }
      return out;
    }
    return v;
  }
}
