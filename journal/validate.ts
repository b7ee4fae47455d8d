// Checks for values decoded from an untrusted file, before they become journal data.

/** A decoded value is not what format v1 allows; the reader turns it into ECORRUPT. */
export class Damage extends Error {
  override readonly name = 'Damage';
}

export function uint(v: unknown, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new Damage(`${what} is ${describe(v)}, expected an integer 0–${max}`);
  }
  return v;
}

/** Any integer a float64 holds exactly (deltas may be negative). */
export function safeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new Damage(`${what} is ${describe(v)}, expected a safe integer`);
  }
  return v;
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new Damage(`${what} is ${describe(v)}, expected true or false`);
  return v;
}

export function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Damage(`${what} is ${describe(v)}, expected a string`);
  return v;
}

export function bytes(v: unknown, length: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length) {
    throw new Damage(`${what} is ${describe(v)}, expected ${length} bytes`);
  }
  return v;
}

export function array(v: unknown, min: number, max: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length < min || v.length > max) {
    throw new Damage(`${what} is ${describe(v)}, expected an array of ${min}–${max} items`);
  }
  return v;
}

/** An own-property bag decoded from a msgpack map (not an array, a buffer or a Date). */
export function record(v: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw new Damage(`${what} is ${describe(v)}, expected a map`);
  return v;
}

/** Own property only: a decoded map must never answer from Object.prototype. */
export function field(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** JSON-like data (what recorder options are), bounded in depth so checking cannot recurse away. */
export function plainData(v: unknown, what: string, depth = 0): unknown {
  if (depth > 16) throw new Damage(`${what} is nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (Array.isArray(v)) {
    for (const item of v) plainData(item, what, depth + 1);
    return v;
  }
  if (isPlainObject(v)) {
    for (const key of Object.keys(v)) plainData(v[key], what, depth + 1);
    return v;
  }
  throw new Damage(`${what} holds ${describe(v)}, expected plain data`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'nil';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return `a string of ${v.length}`;
  return `a ${typeof v}`;
}
