/**
 * Metadata ECC (META_ECC), as fs/ocfs2/blockcheck.c and libocfs2/blockcheck.c:
 * an 8-byte ocfs2_block_check inside the block holds
 *   bc_crc32e = crc32_le(~0, block with the check zeroed)  (no final inversion)
 *   bc_ecc    = a Hamming single-error-correcting code over the same bytes,
 *               data bits taken in little-endian bit order (bit i = byte i>>3,
 *               bit i&7), data bit i -> 1-based code bit skipping powers of 2;
 *               the code is the XOR of the code-bit numbers of all set bits.
 * Validation: if the crc matches, fine; otherwise flip the data bit named by
 * hamming(data) ^ stored_ecc (if any) and re-check the crc.
 *
 * A check covers [start, end) of a buffer: one block normally, a whole 4 KiB
 * xattr bucket for buckets (the kernel's multi-buffer variant chains the crc
 * and continues the bit numbering, which equals computing over the
 * concatenation).
 */
import { crc32_le } from './crc32';
import { Ocfs2CorruptError } from './errors';
import { defineStruct } from './struct';
import { DinodeHeader } from './structs/dinode';
import { ExtentBlockHeader } from './structs/extent';
import { GroupDescHeader } from './structs/group';
import { RefcountBlockHeader } from './structs/refcount';

export const BlockCheck = defineStruct('ocfs2_block_check', 8, 'le', [
  { name: 'bc_crc32e', offset: 0, type: 'u32' },
  { name: 'bc_ecc', offset: 4, type: 'u16' },
  { name: 'bc_reserved1', offset: 6, type: 'u16' },
] as const);
export const BLOCK_CHECK_SIZE = BlockCheck.size;

/**
 * Where the check lives in each structure that has one (byte offset within
 * the block).  Directory trailers, dx roots/leaves, xattr blocks/buckets and
 * quota blocks are defined with their own structures.
 */
export const CHECK_OFFSET = {
  dinode: DinodeHeader.offsetOf('i_check'),
  extentBlock: ExtentBlockHeader.offsetOf('h_check'),
  groupDesc: GroupDescHeader.offsetOf('bg_check'),
  refcountBlock: RefcountBlockHeader.offsetOf('rf_check'),
} as const;

export interface BlockCheckValue {
  crc32e: number;
  ecc: number;
}

/* ---- Hamming code ---------------------------------------------------------- */

/** codeBits[i] = calc_code_bit(i): the 1-based code bit of data bit i. */
let codeBits = new Uint32Array(0);

function ensureCodeBits(nbits: number): Uint32Array {
  if (codeBits.length >= nbits) return codeBits;
  const t = new Uint32Array(Math.max(nbits, 4096 * 8));
  // Walk code bits upward, skipping the parity positions (powers of two).
  let b = 0;
  for (let i = 0; i < t.length; i++) {
    b++;
    while ((b & (b - 1)) === 0) b++;
    t[i] = b;
  }
  codeBits = t;
  return t;
}

/** calc_code_bit(i) of blockcheck.c. */
export function codeBitOf(dataBit: number): number {
  return ensureCodeBits(dataBit + 1)[dataBit]!;
}

/**
 * ocfs2_hamming_encode: XOR into `parity` the code bit numbers of every set
 * bit in data[start, end), numbering data bits from `bitOffset`.
 */
export function hammingEncode(data: Uint8Array, start = 0, end = data.length, parity = 0, bitOffset = 0): number {
  const t = ensureCodeBits(bitOffset + (end - start) * 8);
  let p = parity >>> 0;
  for (let k = start; k < end; k++) {
    let v = data[k]!;
    if (v === 0) continue;
    const base = bitOffset + (k - start) * 8;
    while (v !== 0) {
      const j = 31 - Math.clz32(v & -v); // lowest set bit
      p ^= t[base + j]!;
      v &= v - 1;
    }
  }
  return p >>> 0;
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) n++;
  return n;
}

/**
 * The data bit (0-based) that code bit `fix` stands for, or -1 when `fix`
 * names a parity bit (hweight 1), nothing (0) or lies past `nbits` data bits.
 */
export function dataBitOfCode(fix: number, nbits: number): number {
  if (fix === 0 || popcount(fix) === 1) return -1;
  // Code bit b = i + 1 + (number of powers of two below b).
  const parityBelow = 32 - Math.clz32(fix); // powers of two <= fix (fix is not one)
  const i = fix - 1 - parityBelow;
  return i >= 0 && i < nbits ? i : -1;
}

/* ---- compute / verify -------------------------------------------------------- */

function checkRange(buf: Buffer, checkOffset: number, start: number, end: number): void {
  if (start < 0 || end > buf.length || start > end || checkOffset < start || checkOffset + 8 > end) {
    throw new RangeError(`block check at ${checkOffset} outside [${start}, ${end}) of a ${buf.length}-byte buffer`);
  }
}

/** The check of buf[start, end) with the check field at `checkOffset` taken as zero.  `buf` is not changed. */
export function computeBlockCheck(buf: Buffer, checkOffset: number, start = 0, end = buf.length): BlockCheckValue {
  checkRange(buf, checkOffset, start, end);
  const saved = Buffer.from(buf.subarray(checkOffset, checkOffset + 8));
  buf.fill(0, checkOffset, checkOffset + 8);
  try {
    const crc32e = crc32_le(0xffffffff, buf, start, end);
    const ecc = hammingEncode(buf, start, end) & 0xffff;
    return { crc32e, ecc };
  } finally {
    saved.copy(buf, checkOffset);
  }
}

/** Compute the check and store it in the block (what the kernel does before writing). */
export function updateBlockCheck(buf: Buffer, checkOffset: number, start = 0, end = buf.length): BlockCheckValue {
  const v = computeBlockCheck(buf, checkOffset, start, end);
  BlockCheck.encode({ bc_crc32e: v.crc32e, bc_ecc: v.ecc, bc_reserved1: 0 }, buf, checkOffset);
  return v;
}

/** The stored check. */
export function readBlockCheck(buf: Buffer, checkOffset: number): BlockCheckValue {
  const c = BlockCheck.decode(buf, checkOffset);
  return { crc32e: c.bc_crc32e, ecc: c.bc_ecc };
}

export type BlockCheckResult =
  | { corrected: false }
  /** A single flipped bit was repaired in `buf`; `bit` is its index from `start` (LE bit order). */
  | { corrected: true; bit: number };

/**
 * ocfs2_block_check_validate: accept the block if the crc matches; otherwise
 * try the single-bit Hamming correction (fixing `buf` in place) and accept it
 * if the crc then matches.  Otherwise throw Ocfs2CorruptError naming the block
 * (the buffer is left as it was given).
 */
export function verifyBlockCheck(
  buf: Buffer, checkOffset: number, blkno: number, start = 0, end = buf.length,
): BlockCheckResult {
  checkRange(buf, checkOffset, start, end);
  const stored = readBlockCheck(buf, checkOffset);
  const saved = Buffer.from(buf.subarray(checkOffset, checkOffset + 8));
  buf.fill(0, checkOffset, checkOffset + 8);
  try {
    const crc = crc32_le(0xffffffff, buf, start, end);
    if (crc === stored.crc32e) return { corrected: false };
    const nbits = (end - start) * 8;
    const ecc = hammingEncode(buf, start, end) & 0xffff;
    const bit = dataBitOfCode((ecc ^ stored.ecc) >>> 0, nbits);
    if (bit >= 0) {
      const at = start + (bit >> 3);
      buf[at] = buf[at]! ^ (1 << (bit & 7));
      if (crc32_le(0xffffffff, buf, start, end) === stored.crc32e) return { corrected: true, bit };
      buf[at] = buf[at]! ^ (1 << (bit & 7)); // the fix did not help: undo it
    }
    throw new Ocfs2CorruptError(blkno, 'block check (crc32) mismatch',
      `stored crc32 0x${hex(stored.crc32e, 8)} ecc 0x${hex(stored.ecc, 4)}, computed crc32 0x${hex(crc, 8)} ecc 0x${hex(ecc, 4)}`);
  } finally {
    saved.copy(buf, checkOffset);
  }
}

function hex(v: number, w: number): string {
  return (v >>> 0).toString(16).padStart(w, '0');
}
