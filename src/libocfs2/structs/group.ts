/**
 * Chain allocators (ocfs2_fs.h): the chain list in an allocator inode's id2
 * (global_bitmap, global_inode_alloc, inode_alloc:NNNN, extent_alloc:NNNN)
 * and the group descriptors "GROUP01" it chains together.
 *
 * Bits are clusters in the global bitmap (cl_bpc = 1) and blocks in
 * suballocators (bits per group = cl_cpg * cl_bpc).  Bit 0 of a suballocator
 * group is the descriptor block itself.  Bitmaps use little-endian bit order
 * (bit i = byte i>>3, bit i&7), as ocfs2_set_bit/test_bit.
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import {
  OCFS2_GROUP_DESC_SIGNATURE, OCFS2_MAX_BG_BITMAP_SIZE, hasSignature, signatureText,
} from '../constants';
import { ExtentListHeader, decodeExtentList, decodeOrCorrupt, encodeExtentList, type ExtentList } from './extent';

/* ---- chain list (dinode id2.i_chain) ----------------------------------------- */

export const ChainListHeader = defineStruct('ocfs2_chain_list', 16, 'le', [
  { name: 'cl_cpg', offset: 0x00, type: 'u16' },
  { name: 'cl_bpc', offset: 0x02, type: 'u16' },
  { name: 'cl_count', offset: 0x04, type: 'u16' },
  { name: 'cl_next_free_rec', offset: 0x06, type: 'u16' },
  { name: 'cl_reserved1', offset: 0x08, type: 'u64n' },
] as const);

export const ChainRec = defineStruct('ocfs2_chain_rec', 16, 'le', [
  { name: 'c_free', offset: 0x00, type: 'u32' },
  { name: 'c_total', offset: 0x04, type: 'u32' },
  { name: 'c_blkno', offset: 0x08, type: 'u64' },
] as const);

export type ChainRecT = ReturnType<typeof ChainRec.decode>;

export interface ChainList {
  cpg: number;
  bpc: number;
  count: number;
  nextFreeRec: number;
  reserved1: bigint;
  /** The used chains, [0, nextFreeRec). */
  recs: ChainRecT[];
}

/** How many chain records fit between `off` and `end`. */
export function chainRecsFitting(off: number, end: number): number {
  return Math.max(0, Math.floor((end - off - ChainListHeader.size) / ChainRec.size));
}

export function decodeChainList(buf: Buffer, off: number, blkno: number): ChainList {
  const h = decodeOrCorrupt(ChainListHeader, buf, off, blkno);
  const fit = chainRecsFitting(off, buf.length);
  if (h.cl_count > fit) {
    throw new Ocfs2CorruptError(blkno, 'chain list cl_count too large', `cl_count ${h.cl_count}, room for ${fit}`);
  }
  if (h.cl_next_free_rec > h.cl_count) {
    throw new Ocfs2CorruptError(blkno, 'chain list cl_next_free_rec beyond cl_count',
      `cl_next_free_rec ${h.cl_next_free_rec}, cl_count ${h.cl_count}`);
  }
  const recs: ChainRecT[] = [];
  for (let i = 0; i < h.cl_next_free_rec; i++) {
    recs.push(decodeOrCorrupt(ChainRec, buf, off + ChainListHeader.size + i * ChainRec.size, blkno));
  }
  return {
    cpg: h.cl_cpg, bpc: h.cl_bpc, count: h.cl_count, nextFreeRec: h.cl_next_free_rec,
    reserved1: h.cl_reserved1, recs,
  };
}

/** Write the chain list at `off`: header and used records (slots past cl_next_free_rec are left alone). */
export function encodeChainList(cl: ChainList, buf: Buffer, off: number): void {
  if (cl.recs.length !== cl.nextFreeRec || cl.nextFreeRec > cl.count
      || off + ChainListHeader.size + cl.count * ChainRec.size > buf.length) {
    throw new RangeError(`chain list: ${cl.recs.length} recs, nextFreeRec ${cl.nextFreeRec}, count ${cl.count} do not fit`);
  }
  ChainListHeader.encode({
    cl_cpg: cl.cpg, cl_bpc: cl.bpc, cl_count: cl.count, cl_next_free_rec: cl.nextFreeRec,
    cl_reserved1: cl.reserved1,
  }, buf, off);
  const recsAt = off + ChainListHeader.size;
  cl.recs.forEach((r, i) => ChainRec.encode(r, buf, recsAt + i * ChainRec.size));
}

/* ---- group descriptor ---------------------------------------------------------- */

export const GroupDescHeader = defineStruct('ocfs2_group_desc', 0x40, 'le', [
  { name: 'bg_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'bg_size', offset: 0x08, type: 'u16' },
  { name: 'bg_bits', offset: 0x0a, type: 'u16' },
  { name: 'bg_free_bits_count', offset: 0x0c, type: 'u16' },
  { name: 'bg_chain', offset: 0x0e, type: 'u16' },
  { name: 'bg_generation', offset: 0x10, type: 'u32' },
  { name: 'bg_contig_free_bits', offset: 0x14, type: 'u16' },
  { name: 'bg_reserved1', offset: 0x16, type: 'u16' },
  { name: 'bg_next_group', offset: 0x18, type: 'u64' },
  { name: 'bg_parent_dinode', offset: 0x20, type: 'u64' },
  { name: 'bg_blkno', offset: 0x28, type: 'u64' },
  { name: 'bg_check', offset: 0x30, type: 'bytes', size: 8 },
  { name: 'bg_reserved2', offset: 0x38, type: 'u64n' },
] as const);

export type GroupDescHeaderT = ReturnType<typeof GroupDescHeader.decode>;

/** bg_bitmap starts right after the header. */
export const GROUP_BITMAP_OFFSET = GroupDescHeader.size;
/** With DISCONTIG_BG, bg_list follows a 256-byte bitmap filler. */
export const GROUP_LIST_OFFSET = GROUP_BITMAP_OFFSET + OCFS2_MAX_BG_BITMAP_SIZE;

/**
 * ocfs2_group_bitmap_size: cluster groups use the rest of the block;
 * suballocator groups are capped at 256 bytes when DISCONTIG_BG is on.
 */
export function groupBitmapSize(blocksize: number, suballocator: boolean, discontigBg: boolean): number {
  return suballocator && discontigBg ? OCFS2_MAX_BG_BITMAP_SIZE : blocksize - GROUP_BITMAP_OFFSET;
}

/** ocfs2_extent_recs_per_gd. */
export function extentRecsPerGroupDesc(blocksize: number): number {
  return Math.max(0, Math.floor((blocksize - GROUP_LIST_OFFSET - ExtentListHeader.size) / 16));
}

export interface GroupDesc {
  header: GroupDescHeaderT;
  /** bg_size bytes at 0x40 (a copy). */
  bitmap: Buffer;
  /** bg_list when the group is discontiguous (bg_size == 256 and bg_list.l_next_free_rec != 0). */
  list: ExtentList | null;
}

export interface GroupValidateOptions {
  fsGeneration?: number;
  /** The allocator inode that should own the group (bg_parent_dinode). */
  parentDinode?: number;
}

/**
 * ocfs2_validate_gd_self (minus the ECC): signature, bg_blkno, bg_generation,
 * bg_size within the block, bg_bits <= bg_size * 8, free <= bits.
 */
export function validateGroupDesc(buf: Buffer, blkno: number, opts: GroupValidateOptions = {}): GroupDescHeaderT {
  if (!hasSignature(buf, 0, OCFS2_GROUP_DESC_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor signature mismatch',
      `found ${signatureText(buf, 0)}, expected "${OCFS2_GROUP_DESC_SIGNATURE}"`);
  }
  const h = decodeOrCorrupt(GroupDescHeader, buf, 0, blkno);
  if (h.bg_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_blkno mismatch', `bg_blkno ${h.bg_blkno}`);
  }
  if (opts.fsGeneration !== undefined && h.bg_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_generation mismatch',
      `found 0x${h.bg_generation.toString(16)}, expected 0x${(opts.fsGeneration >>> 0).toString(16)}`);
  }
  if (GROUP_BITMAP_OFFSET + h.bg_size > buf.length) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_size too large', `bg_size ${h.bg_size}`);
  }
  if (h.bg_bits > h.bg_size * 8) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_bits exceeds bitmap',
      `bg_bits ${h.bg_bits}, bg_size ${h.bg_size}`);
  }
  if (h.bg_free_bits_count > h.bg_bits) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_free_bits_count exceeds bg_bits',
      `free ${h.bg_free_bits_count}, bits ${h.bg_bits}`);
  }
  if (opts.parentDinode !== undefined && h.bg_parent_dinode !== opts.parentDinode) {
    throw new Ocfs2CorruptError(blkno, 'group descriptor bg_parent_dinode mismatch',
      `bg_parent_dinode ${h.bg_parent_dinode}, expected ${opts.parentDinode}`);
  }
  return h;
}

/** ocfs2_gd_is_discontig. */
export function groupIsDiscontig(buf: Buffer): boolean {
  if (buf.length < GROUP_LIST_OFFSET + ExtentListHeader.size) return false;
  const size = buf.readUInt16LE(GroupDescHeader.offsetOf('bg_size'));
  return size === OCFS2_MAX_BG_BITMAP_SIZE && buf.readUInt16LE(GROUP_LIST_OFFSET + 4) !== 0;
}

export function decodeGroupDesc(buf: Buffer, blkno: number, opts: GroupValidateOptions = {}): GroupDesc {
  const header = validateGroupDesc(buf, blkno, opts);
  const bitmap = Buffer.from(buf.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + header.bg_size));
  const list = groupIsDiscontig(buf) ? decodeExtentList(buf, GROUP_LIST_OFFSET, blkno) : null;
  if (list && list.treeDepth !== 0) {
    throw new Ocfs2CorruptError(blkno, 'discontiguous group bg_list is not flat', `l_tree_depth ${list.treeDepth}`);
  }
  return { header, bitmap, list };
}

/** Write header, bitmap and (if present) bg_list into a block-sized `buf`. */
export function encodeGroupDesc(gd: GroupDesc, buf: Buffer): Buffer {
  GroupDescHeader.encode(gd.header, buf, 0);
  gd.bitmap.copy(buf, GROUP_BITMAP_OFFSET, 0, gd.header.bg_size);
  if (gd.list) encodeExtentList(gd.list, buf, GROUP_LIST_OFFSET);
  return buf;
}

/** A view (not a copy) of the bitmap of a group descriptor block. */
export function groupBitmapView(buf: Buffer): Buffer {
  const size = buf.readUInt16LE(GroupDescHeader.offsetOf('bg_size'));
  return buf.subarray(GROUP_BITMAP_OFFSET, Math.min(buf.length, GROUP_BITMAP_OFFSET + size));
}

/* ---- bitmap helpers (little-endian bit order) ------------------------------------- */

export function testBit(bitmap: Uint8Array, i: number): boolean {
  return ((bitmap[i >> 3]! >> (i & 7)) & 1) === 1;
}

export function setBit(bitmap: Uint8Array, i: number): void {
  bitmap[i >> 3] = bitmap[i >> 3]! | (1 << (i & 7));
}

export function clearBit(bitmap: Uint8Array, i: number): void {
  bitmap[i >> 3] = bitmap[i >> 3]! & ~(1 << (i & 7));
}

/** First set bit in [from, nbits), or nbits if none. */
export function findNextSetBit(bitmap: Uint8Array, nbits: number, from = 0): number {
  for (let i = from; i < nbits; i++) {
    if ((i & 7) === 0 && bitmap[i >> 3] === 0) { i += 7; continue; }
    if (testBit(bitmap, i)) return i;
  }
  return nbits;
}

/** First clear bit in [from, nbits), or nbits if none. */
export function findNextZeroBit(bitmap: Uint8Array, nbits: number, from = 0): number {
  for (let i = from; i < nbits; i++) {
    if ((i & 7) === 0 && bitmap[i >> 3] === 0xff && i + 8 <= nbits) { i += 7; continue; }
    if (!testBit(bitmap, i)) return i;
  }
  return nbits;
}

/** Number of set bits in [0, nbits). */
export function countSetBits(bitmap: Uint8Array, nbits: number): number {
  let n = 0;
  const whole = nbits >> 3;
  for (let k = 0; k < whole; k++) {
    let v = bitmap[k]!;
    while (v) { v &= v - 1; n++; }
  }
  for (let i = whole * 8; i < nbits; i++) if (testBit(bitmap, i)) n++;
  return n;
}

/** Length of the longest run of clear bits in [0, nbits) (bg_contig_free_bits). */
export function longestZeroRun(bitmap: Uint8Array, nbits: number): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < nbits; i++) {
    if (testBit(bitmap, i)) { run = 0; } else if (++run > best) best = run;
  }
  return best;
}
