// Keyed, prefix-preserving address pseudonyms (Crypto-PAn) and name pseudonyms for redaction.
import { createCipheriv, createHmac } from 'node:crypto';
import { numberAddress, parseCidr } from '../core/prefix.js';
/** The header option value naming the mapping; a later, different mapping gets a new name. */
export const REDACT_SCHEME = 'cryptopan-v1';
/** The shortest key accepted: 128 bits, AES-128's own key size. */
export const MIN_KEY_BYTES = 16;

/**
 * Special-purpose blocks: the prefix stays, the rest is pseudonymised, so loopback stays loopback
 * (analyzer/core/direction.ts isLoopback), link-local, multicast and private stay what they are. The
 * private blocks are a choice (docs/redact.md): a reader still tells private from public.
 * ::ffff:0:0/96 is kept too, and its last 32 bits take the IPv4 mapping.
 */
export const KEPT_BLOCKS_V4: readonly string[] = [
  '0.0.0.0/32',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '255.255.255.255/32',
];
export const KEPT_BLOCKS_V6: readonly string[] = [
  '::/128',
  '::1/128',
  '::ffff:0:0/96',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

/** Mappings kept per family before the cache starts over (≈ 100 MB at most). */
const CACHE_MAX = 1 << 20;

interface Block {
  bytes: Uint8Array;
  bits: number;
}

/**
 * Crypto-PAn (Xu, Fan, Ammar, Moon 2002) over AES-128: output bit i is input bit i XOR the
 * first bit of AES(first i input bits, then a secret pad). Bit i's mask depends only on the bits
 * before it, so two addresses sharing exactly n leading bits map to two sharing exactly n. A
 * kept bit is one whose mask is 0: bits on the way to a kept block (every proper prefix of one)
 * and the block's own bits. That is still a function of the bits before it, so prefixes stay
 * preserved across blocks too; the price is that an address next to a kept block keeps the
 * bits it shares with it, plus one (11.0.0.0/8 stays in 11/8, beside 10/8).
 */
class PrefixCipher {
  readonly #cipher: ReturnType<typeof createCipheriv>;
  readonly #pad: Buffer;
  readonly #blocks: Buffer;
  readonly #kept: readonly Block[];
  readonly #bits: number;

  constructor(secret: Buffer, bits: 32 | 128, kept: readonly Block[]) {
    this.#cipher = createCipheriv('aes-128-ecb', secret.subarray(0, 16), null);
    this.#cipher.setAutoPadding(false);
    this.#pad = Buffer.from(secret.subarray(16, 32));
    // Block i (for bit i) at offset 16 i: its bytes after the first i bits never change, so
    // they are the pad once and for all, and each address writes only its prefix bytes.
    this.#blocks = Buffer.alloc(bits * 16);
    for (let i = 0; i < bits; i++) this.#pad.copy(this.#blocks, i * 16);
    this.#kept = kept;
    this.#bits = bits;
  }

  /** `addr` mapped, into `out` (same length, may not alias `addr`). */
  apply(addr: Uint8Array, out: Uint8Array): void {
    out.set(addr);
    const from = keptBits(addr, this.#kept);
    if (from >= this.#bits) return;
    const buf = this.#blocks;
    const pad = this.#pad;
    for (let i = from; i < this.#bits; i++) {
      const o = i * 16;
      const whole = i >>> 3;
      for (let b = 0; b < whole; b++) buf[o + b] = addr[b] as number;
      const rest = i & 7;
      if (rest !== 0) {
        const high = (0xff00 >>> rest) & 0xff;
        buf[o + whole] = ((addr[whole] as number) & high) | ((pad[whole] as number) & ~high & 0xff);
      }
    }
    // Every prefix's block in one native call: ECB encrypts each block on its own.
    const enc = this.#cipher.update(buf.subarray(from * 16));
    if (enc.length !== buf.length - from * 16) {
      throw new Error('redact: AES-ECB returned a partial block');
    }
    for (let i = from; i < this.#bits; i++) {
      if (((enc[(i - from) * 16] as number) & 0x80) !== 0) {
        out[i >>> 3] = (out[i >>> 3] as number) ^ (0x80 >>> (i & 7));
      }
    }
  }
}

/** How many leading bits of `addr` stay: the longest way along or into a kept block. */
function keptBits(addr: Uint8Array, blocks: readonly Block[]): number {
  let kept = 0;
  for (const b of blocks) {
    const c = commonPrefix(addr, b.bytes, b.bits);
    // Inside the block: its bits. Beside it: the shared bits, and the one after them.
    const k = c < b.bits ? c + 1 : b.bits;
    if (k > kept) kept = k;
  }
  return kept;
}

/** Leading bits `a` and `b` share, at most `max`. */
export function commonPrefix(a: Uint8Array, b: Uint8Array, max = 8 * a.length): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) ^ (b[i] as number);
    if (d !== 0) return Math.min(max, 8 * i + Math.clz32(d) - 24);
  }
  return Math.min(max, 8 * n);
}

/** A kept block's leading bits, read by the one prefix parser (core/prefix.ts). */
function parseBlock(text: string): Block {
  const c = parseCidr(text);
  if (c === undefined) throw new Error(`pseudonym: kept block ${text} is not a prefix`);
  return { bytes: numberAddress(c.network, c.family), bits: c.prefix };
}

const BLOCKS_V4 = KEPT_BLOCKS_V4.map(parseBlock);
const BLOCKS_V6 = KEPT_BLOCKS_V6.map(parseBlock);

function isV4Mapped(a: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** HMAC-SHA256 of the key over a labelled message: every derived value has its own label. */
function derive(key: Uint8Array, label: string, data = ''): Buffer {
  return createHmac('sha256', key).update(`${REDACT_SCHEME} ${label}\0${data}`).digest();
}

/**
 * The keyed pseudonyms of one key: addresses (prefix-preserving, IPv4 and IPv6 with separate
 * subkeys), host names and interface names. The same key gives the same pseudonyms in every
 * journal and every run; the key itself never leaves this object.
 */
export class AddressPseudonymizer {
  /** Names the key without revealing it: equal ids, same key (up to a 1 in 2^32 chance). */
  readonly keyId: string;
  readonly #key: Uint8Array;
  readonly #v4: PrefixCipher;
  readonly #v6: PrefixCipher;
  readonly #cache4 = new Map<number, number>();
  readonly #cache6 = new Map<string, Uint8Array>();
  readonly #in4 = new Uint8Array(4);
  readonly #out4 = new Uint8Array(4);
  #computed = 0;
  #evicted = false;

  constructor(key: Uint8Array) {
    if (key.length < MIN_KEY_BYTES) {
      throw new RangeError(`redact: a key has at least ${MIN_KEY_BYTES} bytes`);
    }
    this.#key = Uint8Array.from(key);
    this.keyId = derive(this.#key, 'key-id').toString('hex').slice(0, 8);
    this.#v4 = new PrefixCipher(derive(this.#key, 'ipv4'), 32, BLOCKS_V4);
    this.#v6 = new PrefixCipher(derive(this.#key, 'ipv6'), 128, BLOCKS_V6);
  }

  /** Mappings computed so far: the distinct addresses seen, unless `evicted`. */
  get computed(): number {
    return this.#computed;
  }

  /** Whether the cache started over (then `computed` counts some addresses twice). */
  get evicted(): boolean {
    return this.#evicted;
  }

  /** The pseudonym of a 4- or 16-byte address (network byte order), as a fresh array. */
  map(addr: Uint8Array): Uint8Array {
    if (addr.length === 4) {
      const x =
        (((addr[0] as number) << 24) |
          ((addr[1] as number) << 16) |
          ((addr[2] as number) << 8) |
          (addr[3] as number)) >>>
        0;
      let y = this.#cache4.get(x);
      if (y === undefined) {
        this.#in4.set(addr);
        this.#v4.apply(this.#in4, this.#out4);
        const o = this.#out4;
        y =
          (((o[0] as number) << 24) |
            ((o[1] as number) << 16) |
            ((o[2] as number) << 8) |
            (o[3] as number)) >>>
          0;
        this.#remember(this.#cache4, x, y);
      }
      return Uint8Array.of(y >>> 24, (y >>> 16) & 0xff, (y >>> 8) & 0xff, y & 0xff);
    }
    if (addr.length !== 16) throw new RangeError('redact: an address is 4 or 16 bytes');
    if (isV4Mapped(addr)) {
      // Not addr.slice(): on a Buffer (what the reader decodes) that is a view, not a copy.
      const out = new Uint8Array(16);
      out.set(addr.subarray(0, 12));
      out.set(this.map(addr.subarray(12)), 12);
      return out;
    }
    const k = Buffer.from(addr.buffer, addr.byteOffset, 16).toString('latin1');
    let y = this.#cache6.get(k);
    if (y === undefined) {
      y = new Uint8Array(16);
      this.#v6.apply(addr, y);
      this.#remember(this.#cache6, k, y);
    }
    return y.slice();
  }

  #remember<K, V>(cache: Map<K, V>, k: K, v: V): void {
    if (cache.size >= CACHE_MAX) {
      cache.clear();
      this.#evicted = true;
    }
    cache.set(k, v);
    this.#computed++;
  }

  /** `host-` and 8 hex digits: the same host keeps one name, so reports still merge by host. */
  hostName(name: string): string {
    return `host-${derive(this.#key, 'host', name).toString('hex').slice(0, 8)}`;
  }

  /** `lo` stays (it says loopback and nothing else); any other name becomes `if-` + 8 hex. */
  interfaceName(name: string): string {
    if (name === 'lo') return name;
    return `if-${derive(this.#key, 'ifname', name).toString('hex').slice(0, 8)}`;
  }
}
