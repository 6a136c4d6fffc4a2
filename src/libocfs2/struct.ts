/**
 * Field-table engine for on-disk structures.
 *
 * Every on-disk structure is declared once as a table of (name, offset, type)
 * rows plus its total size; decode and encode are derived from that table, so
 * a layout fact lives in exactly one place.  OCFS2 structures are little-endian,
 * JBD2 and o2net structures big-endian.
 *
 * Field types:
 *   u8/u16/u32/i8/i16/i32   -> number
 *   u64/i64                 -> number (decode throws if beyond 2^53: block numbers,
 *                               sizes and times fit; use u64n where a full 64-bit
 *                               value is legitimate, e.g. random generations)
 *   u64n                    -> bigint
 *   bytes (with size)       -> Buffer (a copy)
 */

export type Endian = 'le' | 'be';

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64' | 'u64n';

export interface ScalarField {
  readonly name: string;
  readonly offset: number;
  readonly type: ScalarType;
}
export interface BytesField {
  readonly name: string;
  readonly offset: number;
  readonly type: 'bytes';
  readonly size: number;
}
export type Field = ScalarField | BytesField;

interface TypeMap {
  u8: number; u16: number; u32: number; u64: number;
  i8: number; i16: number; i32: number; i64: number;
  u64n: bigint; bytes: Buffer;
}

/** The decoded object type of a field table. */
export type Decoded<F extends readonly Field[]> = {
  -readonly [K in F[number] as K['name']]: TypeMap[K['type']];
};

const SCALAR_SIZE: Record<ScalarType, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8, i64: 8, u64n: 8,
};

export function fieldSize(f: Field): number {
  return f.type === 'bytes' ? f.size : SCALAR_SIZE[f.type];
}

export class StructLayoutError extends Error {
  override name = 'StructLayoutError';
}

export interface StructDef<T> {
  readonly name: string;
  readonly size: number;
  readonly endian: Endian;
  readonly fields: readonly Field[];
  /** Offset of a named field (throws for an unknown name). */
  offsetOf(name: keyof T & string): number;
  decode(buf: Buffer, off?: number): T;
  /**
   * Write the fields of `value` into `buf` at `off` (bytes not covered by the
   * table are left as they are, so reserved/unknown bytes survive a round trip).
   * Without `buf`, a zeroed buffer of `size` bytes is allocated.
   */
  encode(value: T, buf?: Buffer, off?: number): Buffer;
  /** A value with every field zero (bytes fields zero-filled). */
  zero(): T;
}

function readScalar(buf: Buffer, at: number, type: ScalarType, endian: Endian, sname: string, fname: string): number | bigint {
  const le = endian === 'le';
  switch (type) {
    case 'u8': return buf.readUInt8(at);
    case 'i8': return buf.readInt8(at);
    case 'u16': return le ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
    case 'i16': return le ? buf.readInt16LE(at) : buf.readInt16BE(at);
    case 'u32': return le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
    case 'i32': return le ? buf.readInt32LE(at) : buf.readInt32BE(at);
    case 'u64n': return le ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
    case 'u64': {
      const v = le ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new StructLayoutError(`${sname}.${fname}: value ${v} exceeds 2^53`);
      }
      return Number(v);
    }
    case 'i64': {
      const v = le ? buf.readBigInt64LE(at) : buf.readBigInt64BE(at);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new StructLayoutError(`${sname}.${fname}: value ${v} exceeds 2^53`);
      }
      return Number(v);
    }
  }
}

function writeScalar(buf: Buffer, at: number, type: ScalarType, endian: Endian, v: number | bigint): void {
  const le = endian === 'le';
  switch (type) {
    case 'u8': buf.writeUInt8(Number(v) & 0xff, at); return;
    case 'i8': buf.writeInt8(Number(v), at); return;
    case 'u16': le ? buf.writeUInt16LE(Number(v) & 0xffff, at) : buf.writeUInt16BE(Number(v) & 0xffff, at); return;
    case 'i16': le ? buf.writeInt16LE(Number(v), at) : buf.writeInt16BE(Number(v), at); return;
    case 'u32': le ? buf.writeUInt32LE(Number(v) >>> 0, at) : buf.writeUInt32BE(Number(v) >>> 0, at); return;
    case 'i32': le ? buf.writeInt32LE(Number(v) | 0, at) : buf.writeInt32BE(Number(v) | 0, at); return;
    case 'u64': case 'u64n': {
      const b = BigInt.asUintN(64, BigInt(v));
      le ? buf.writeBigUInt64LE(b, at) : buf.writeBigUInt64BE(b, at); return;
    }
    case 'i64': {
      const b = BigInt.asIntN(64, BigInt(v));
      le ? buf.writeBigInt64LE(b, at) : buf.writeBigInt64BE(b, at); return;
    }
  }
}

/**
 * Declare a structure.  The table is checked at definition time: every field
 * must lie inside `size` and no two fields may overlap (unions are declared as
 * separate structs over the same bytes).
 */
export function defineStruct<const F extends readonly Field[]>(
  name: string, size: number, endian: Endian, fields: F,
): StructDef<Decoded<F>> {
  const sorted = [...fields].sort((a, b) => a.offset - b.offset);
  let end = 0;
  const seen = new Set<string>();
  for (const f of sorted) {
    if (seen.has(f.name)) throw new StructLayoutError(`${name}: duplicate field ${f.name}`);
    seen.add(f.name);
    if (f.offset < end) throw new StructLayoutError(`${name}: field ${f.name} at ${f.offset} overlaps the previous field`);
    end = f.offset + fieldSize(f);
    if (end > size) throw new StructLayoutError(`${name}: field ${f.name} ends at ${end}, beyond size ${size}`);
  }
  const offsets = new Map(fields.map((f) => [f.name, f.offset] as const));
  type T = Decoded<F>;
  return {
    name, size, endian, fields,
    offsetOf(fname: string): number {
      const o = offsets.get(fname);
      if (o === undefined) throw new StructLayoutError(`${name}: no field ${fname}`);
      return o;
    },
    decode(buf: Buffer, off = 0): T {
      if (off < 0 || off + size > buf.length) {
        throw new StructLayoutError(`${name}: need ${size} bytes at offset ${off}, buffer has ${buf.length}`);
      }
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const at = off + f.offset;
        out[f.name] = f.type === 'bytes'
          ? Buffer.from(buf.subarray(at, at + f.size))
          : readScalar(buf, at, f.type, endian, name, f.name);
      }
      return out as T;
    },
    encode(value: T, buf?: Buffer, off = 0): Buffer {
      const target = buf ?? Buffer.alloc(size);
      if (off < 0 || off + size > target.length) {
        throw new StructLayoutError(`${name}: need ${size} bytes at offset ${off}, buffer has ${target.length}`);
      }
      const v = value as Record<string, unknown>;
      for (const f of fields) {
        const at = off + f.offset;
        const x = v[f.name];
        if (f.type === 'bytes') {
          const src = x as Buffer;
          target.fill(0, at, at + f.size);
          src.copy(target, at, 0, Math.min(src.length, f.size));
        } else {
          writeScalar(target, at, f.type, endian, x as number | bigint);
        }
      }
      return target;
    },
    zero(): T {
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        out[f.name] = f.type === 'bytes' ? Buffer.alloc(f.size) : f.type === 'u64n' ? 0n : 0;
      }
      return out as T;
    },
  };
}

/** Read a NUL-padded string out of a fixed-size byte field. */
export function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

/** Make a fixed-size NUL-padded byte field from a string. */
export function fixedBytes(s: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  Buffer.from(s, 'utf8').copy(out, 0, 0, size);
  return out;
}
