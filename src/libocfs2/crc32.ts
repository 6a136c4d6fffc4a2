/**
 * CRC-32 (IEEE 802.3 polynomial, reflected: 0xEDB88320), with the kernel's
 * crc32_le() calling convention: the caller passes the running value in and
 * there is no implicit pre/post inversion.  OCFS2's block check uses
 * crc32_le(~0, data, len) (ocfs2/blockcheck.c), o2hb uses crc32_le(0, ...),
 * JBD2 checksums use crc32c (see crc32c below).
 */

function makeTable(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}

const TABLE_LE = makeTable(0xedb88320);
const TABLE_C = makeTable(0x82f63b78);

function run(table: Uint32Array, seed: number, data: Uint8Array, start: number, end: number): number {
  let c = seed >>> 0;
  for (let i = start; i < end; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** Kernel crc32_le(seed, data, len): no inversion. */
export function crc32_le(seed: number, data: Uint8Array, start = 0, end = data.length): number {
  return run(TABLE_LE, seed, data, start, end);
}

/** Kernel crc32c(seed, data, len) (Castagnoli), no inversion, as jbd2 uses it. */
export function crc32c(seed: number, data: Uint8Array, start = 0, end = data.length): number {
  return run(TABLE_C, seed, data, start, end);
}

/** The common zlib/IEEE CRC-32 (seed ~0, final inversion): for tests against known vectors. */
export function crc32ieee(data: Uint8Array): number {
  return (~run(TABLE_LE, 0xffffffff, data, 0, data.length)) >>> 0;
}
