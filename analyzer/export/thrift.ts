// Thrift's compact protocol, the write half and only the types Parquet's footer and page headers use.

/** A value to encode; a struct is its fields as [field id, value] in increasing id order. */
export type TValue =
  | { readonly i32: number }
  | { readonly i64: number }
  | { readonly i8: number }
  | { readonly bool: boolean }
  | { readonly bin: Uint8Array | string }
  | { readonly struct: readonly (readonly [number, TValue])[] }
  | { readonly list: readonly TValue[]; readonly of: 'i32' | 'bin' | 'struct' };

// Compact protocol type nibbles.
const T_TRUE = 1;
const T_FALSE = 2;
const T_BYTE = 3;
const T_I32 = 5;
const T_I64 = 6;
const T_BINARY = 8;
const T_LIST = 9;
const T_STRUCT = 12;
const LIST_OF = { i32: T_I32, bin: T_BINARY, struct: T_STRUCT } as const;

/** Encodes one struct (a footer, a page header) to bytes. */
export function encodeStruct(fields: readonly (readonly [number, TValue])[]): Uint8Array {
  const out: number[] = [];
  writeStruct(out, fields);
  return Uint8Array.from(out);
}

function typeOf(v: TValue): number {
  if ('i32' in v) return T_I32;
  if ('i64' in v) return T_I64;
  if ('i8' in v) return T_BYTE;
  if ('bool' in v) return v.bool ? T_TRUE : T_FALSE;
  if ('bin' in v) return T_BINARY;
  if ('struct' in v) return T_STRUCT;
  return T_LIST;
}

function writeStruct(out: number[], fields: readonly (readonly [number, TValue])[]): void {
  let last = 0;
  for (const [id, v] of fields) {
    const t = typeOf(v);
    const delta = id - last;
    if (delta > 0 && delta <= 15) out.push((delta << 4) | t);
    else {
      out.push(t);
      varint(out, zigzag(id));
    }
    last = id;
    // A bool field's value is its type nibble.
    if (!('bool' in v)) writeValue(out, v);
  }
  out.push(0);
}

function writeValue(out: number[], v: TValue): void {
  if ('i32' in v) varint(out, zigzag(v.i32));
  else if ('i64' in v) varint(out, zigzag(v.i64));
  else if ('i8' in v) out.push(v.i8 & 0xff);
  else if ('bool' in v) out.push(v.bool ? 1 : 2);
  else if ('bin' in v) {
    const b = typeof v.bin === 'string' ? Buffer.from(v.bin, 'utf8') : v.bin;
    varint(out, b.length);
    for (const x of b) out.push(x);
  } else if ('struct' in v) writeStruct(out, v.struct);
  else {
    const t = LIST_OF[v.of];
    if (v.list.length < 15) out.push((v.list.length << 4) | t);
    else {
      out.push(0xf0 | t);
      varint(out, v.list.length);
    }
    for (const item of v.list) writeValue(out, item);
  }
}

/** ZigZag of an integer up to ±2^52 (Number arithmetic: no 32-bit wrap). */
/** Zigzag of an integer within ±2^52 (exact in a double). */
export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

/** ULEB128 of a non-negative integer up to 2^53. */
export function varint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}
