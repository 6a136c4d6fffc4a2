/**
 * The OCFS2 inode, ocfs2_dinode "INODE01" (ocfs2_fs.h): one block.  A
 * 0xB8-byte header, an 8-byte id1 union at 0xB8 (dev1 / bitmap1 / journal1)
 * and the id2 union from 0xC0 to the end of the block (superblock, local
 * alloc, chain list, extent list, truncate log, inline data, fast symlink).
 * With dyn INLINE_XATTR_FL the last i_xattr_inline_size bytes of the block
 * hold an xattr header instead, and id2 capacities shrink accordingly.
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import {
  OCFS2_CHAIN_FL, OCFS2_INLINE_DATA_FL, OCFS2_INLINE_XATTR_FL, OCFS2_INODE_SIGNATURE,
  OCFS2_INVALID_SLOT, OCFS2_INVALID_SLOT_U16, OCFS2_LINKS_HI_SHIFT, OCFS2_VALID_FL,
  hasSignature, signatureText,
} from '../constants';
import {
  decodeExtentList, decodeOrCorrupt, encodeExtentList, extentRecsFitting, type ExtentList,
} from './extent';
import { decodeChainList, encodeChainList, chainRecsFitting, type ChainList } from './group';
import { decodeLocalAlloc, encodeLocalAlloc, type LocalAlloc } from './localalloc';
import { decodeTruncateLog, encodeTruncateLog, type TruncateLog } from './truncatelog';

export const DinodeHeader = defineStruct('ocfs2_dinode', 0xc0, 'le', [
  { name: 'i_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'i_generation', offset: 0x08, type: 'u32' },
  { name: 'i_suballoc_slot', offset: 0x0c, type: 'u16' },
  { name: 'i_suballoc_bit', offset: 0x0e, type: 'u16' },
  { name: 'i_links_count_hi', offset: 0x10, type: 'u16' },
  { name: 'i_xattr_inline_size', offset: 0x12, type: 'u16' },
  { name: 'i_clusters', offset: 0x14, type: 'u32' },
  { name: 'i_uid', offset: 0x18, type: 'u32' },
  { name: 'i_gid', offset: 0x1c, type: 'u32' },
  { name: 'i_size', offset: 0x20, type: 'u64' },
  { name: 'i_mode', offset: 0x28, type: 'u16' },
  { name: 'i_links_count', offset: 0x2a, type: 'u16' },
  { name: 'i_flags', offset: 0x2c, type: 'u32' },
  // Times are seconds since the epoch; the kernel stores them as signed
  // 64-bit values (pre-1970 times are negative).
  { name: 'i_atime', offset: 0x30, type: 'i64' },
  { name: 'i_ctime', offset: 0x38, type: 'i64' },
  { name: 'i_mtime', offset: 0x40, type: 'i64' },
  { name: 'i_dtime', offset: 0x48, type: 'i64' },
  { name: 'i_blkno', offset: 0x50, type: 'u64' },
  { name: 'i_last_eb_blk', offset: 0x58, type: 'u64' },
  { name: 'i_fs_generation', offset: 0x60, type: 'u32' },
  { name: 'i_atime_nsec', offset: 0x64, type: 'u32' },
  { name: 'i_ctime_nsec', offset: 0x68, type: 'u32' },
  { name: 'i_mtime_nsec', offset: 0x6c, type: 'u32' },
  { name: 'i_attr', offset: 0x70, type: 'u32' },
  { name: 'i_orphaned_slot', offset: 0x74, type: 'u16' },
  { name: 'i_dyn_features', offset: 0x76, type: 'u16' },
  { name: 'i_xattr_loc', offset: 0x78, type: 'u64' },
  { name: 'i_check', offset: 0x80, type: 'bytes', size: 8 },
  { name: 'i_dx_root', offset: 0x88, type: 'u64' },
  { name: 'i_refcount_loc', offset: 0x90, type: 'u64' },
  { name: 'i_suballoc_loc', offset: 0x98, type: 'u64' },
  { name: 'i_dio_orphaned_slot', offset: 0xa0, type: 'u16' },
  { name: 'i_reserved1', offset: 0xa2, type: 'bytes', size: 6 },
  { name: 'i_reserved2', offset: 0xa8, type: 'bytes', size: 16 },
  // The id1 union; read it through Id1Dev / Id1Bitmap / Id1Journal.
  { name: 'id1', offset: 0xb8, type: 'bytes', size: 8 },
] as const);

export type DinodeHeaderT = ReturnType<typeof DinodeHeader.decode>;

export const DINODE_ID1_OFFSET = DinodeHeader.offsetOf('id1');
/** id2 starts where the header ends. */
export const DINODE_ID2_OFFSET = DinodeHeader.size;

/* id1 union members, offsets relative to id1 (0xB8). */
export const Id1Dev = defineStruct('ocfs2_dinode.id1.dev1', 8, 'le', [
  { name: 'i_rdev', offset: 0, type: 'u64n' },
] as const);
export const Id1Bitmap = defineStruct('ocfs2_dinode.id1.bitmap1', 8, 'le', [
  { name: 'i_used', offset: 0, type: 'u32' },
  { name: 'i_total', offset: 4, type: 'u32' },
] as const);
export const Id1Journal = defineStruct('ocfs2_dinode.id1.journal1', 8, 'le', [
  { name: 'ij_flags', offset: 0, type: 'u32' },
  { name: 'ij_recovery_generation', offset: 4, type: 'u32' },
] as const);

export type Id1BitmapT = ReturnType<typeof Id1Bitmap.decode>;
export type Id1JournalT = ReturnType<typeof Id1Journal.decode>;

export function readId1Bitmap(buf: Buffer): Id1BitmapT { return Id1Bitmap.decode(buf, DINODE_ID1_OFFSET); }
export function writeId1Bitmap(buf: Buffer, v: Id1BitmapT): void { Id1Bitmap.encode(v, buf, DINODE_ID1_OFFSET); }
export function readId1Journal(buf: Buffer): Id1JournalT { return Id1Journal.decode(buf, DINODE_ID1_OFFSET); }
export function writeId1Journal(buf: Buffer, v: Id1JournalT): void { Id1Journal.encode(v, buf, DINODE_ID1_OFFSET); }
export function readRdev(buf: Buffer): bigint { return Id1Dev.decode(buf, DINODE_ID1_OFFSET).i_rdev; }
export function writeRdev(buf: Buffer, rdev: bigint): void { Id1Dev.encode({ i_rdev: rdev }, buf, DINODE_ID1_OFFSET); }

/* id2.i_data (inline data) header, relative to id2. */
export const InlineDataHeader = defineStruct('ocfs2_inline_data', 8, 'le', [
  { name: 'id_count', offset: 0x00, type: 'u16' },
  { name: 'id_reserved0', offset: 0x02, type: 'u16' },
  { name: 'id_reserved1', offset: 0x04, type: 'u32' },
] as const);
export const INLINE_DATA_OFFSET = DINODE_ID2_OFFSET + InlineDataHeader.size;

/* ---- capacities -------------------------------------------------------------- */

/** Bytes reserved for inline xattrs at the end of this inode block (0 unless INLINE_XATTR_FL). */
export function inlineXattrSize(h: Pick<DinodeHeaderT, 'i_dyn_features' | 'i_xattr_inline_size'>): number {
  return (h.i_dyn_features & OCFS2_INLINE_XATTR_FL) ? h.i_xattr_inline_size : 0;
}

/** ocfs2_max_inline_data_with_xattr. */
export function maxInlineData(blocksize: number, xattrInlineSize = 0): number {
  return blocksize - INLINE_DATA_OFFSET - xattrInlineSize;
}

/** ocfs2_extent_recs_per_inode(_with_xattr). */
export function extentRecsPerInode(blocksize: number, xattrInlineSize = 0): number {
  return extentRecsFitting(DINODE_ID2_OFFSET, blocksize - xattrInlineSize);
}

/** ocfs2_chain_recs_per_inode. */
export function chainRecsPerInode(blocksize: number): number {
  return chainRecsFitting(DINODE_ID2_OFFSET, blocksize);
}

/** ocfs2_fast_symlink_chars: a fast symlink's target plus its NUL must fit here. */
export function fastSymlinkChars(blocksize: number): number {
  return blocksize - DINODE_ID2_OFFSET;
}

/* ---- validation -------------------------------------------------------------------- */

export interface DinodeValidateOptions {
  /** Refuse an inode without OCFS2_VALID_FL (the kernel does for inodes it reads). */
  requireValid?: boolean;
}

/**
 * ocfs2_validate_inode_block (minus the ECC, see blockcheck.ts): signature,
 * i_blkno == the block's own number, i_fs_generation (when given), and the
 * id2 counts the kernel checks (inline id_count, chain list counts, the
 * inline xattr area).  Returns the decoded header.
 */
export function validateDinode(buf: Buffer, blkno: number, fsGeneration?: number, opts: DinodeValidateOptions = {}): DinodeHeaderT {
  if (!hasSignature(buf, 0, OCFS2_INODE_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, 'dinode signature mismatch',
      `found ${signatureText(buf, 0)}, expected "${OCFS2_INODE_SIGNATURE}"`);
  }
  const h = decodeOrCorrupt(DinodeHeader, buf, 0, blkno);
  checkDinodeHeader(h, buf.length, blkno, fsGeneration, opts);
  if (h.i_dyn_features & OCFS2_INLINE_DATA_FL) {
    const { id_count } = InlineDataHeader.decode(buf, DINODE_ID2_OFFSET);
    const max = maxInlineData(buf.length, inlineXattrSize(h));
    if (id_count > max) {
      throw new Ocfs2CorruptError(blkno, 'dinode inline data id_count too large', `id_count ${id_count}, max ${max}`);
    }
  }
  if (h.i_flags & OCFS2_CHAIN_FL) decodeChainList(buf, DINODE_ID2_OFFSET, blkno);
  return h;
}

/** The header checks of validateDinode, for a header already decoded (e.g. the superblock's). */
export function checkDinodeHeader(
  h: DinodeHeaderT, blocksize: number, blkno: number, fsGeneration?: number, opts: DinodeValidateOptions = {},
): void {
  if (opts.requireValid && !(h.i_flags & OCFS2_VALID_FL)) {
    throw new Ocfs2CorruptError(blkno, 'dinode OCFS2_VALID_FL not set', `i_flags 0x${h.i_flags.toString(16)}`);
  }
  if (h.i_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'dinode i_blkno mismatch', `i_blkno ${h.i_blkno}`);
  }
  if (fsGeneration !== undefined && h.i_fs_generation !== (fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'dinode i_fs_generation mismatch',
      `found 0x${h.i_fs_generation.toString(16)}, expected 0x${(fsGeneration >>> 0).toString(16)}`);
  }
  if ((h.i_dyn_features & OCFS2_INLINE_XATTR_FL)
      && (h.i_xattr_inline_size === 0 || h.i_xattr_inline_size > blocksize - DINODE_ID2_OFFSET)) {
    throw new Ocfs2CorruptError(blkno, 'dinode i_xattr_inline_size out of range', `${h.i_xattr_inline_size}`);
  }
}

/* ---- the convenient decoded inode ------------------------------------------------------- */

export interface Timespec {
  sec: number;
  nsec: number;
}

/** A dinode's header in the shape a filesystem wants. */
export interface Inode {
  blkno: number;
  generation: number;
  fsGeneration: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** i_links_count | i_links_count_hi << 16. */
  nlink: number;
  clusters: number;
  /** i_flags (OCFS2_*_FL). */
  flags: number;
  /** i_dyn_features. */
  dynFeatures: number;
  /** i_attr (chattr FS_*_FL). */
  attr: number;
  atime: Timespec;
  ctime: Timespec;
  mtime: Timespec;
  dtime: number;
  lastEbBlk: number;
  xattrLoc: number;
  /** Bytes of inline xattr area at the end of the block (0 unless INLINE_XATTR_FL). */
  xattrInlineSize: number;
  dxRoot: number;
  refcountLoc: number;
  /** -1 (0xFFFF on disk) = the global allocator. */
  suballocSlot: number;
  suballocBit: number;
  suballocLoc: number;
  /** -1 when not set. */
  orphanedSlot: number;
  dioOrphanedSlot: number;
  /** id1.dev1.i_rdev (meaningful for device inodes). */
  rdev: bigint;
  check: { crc32e: number; ecc: number };
}

function slot(v: number): number {
  return v === OCFS2_INVALID_SLOT_U16 ? OCFS2_INVALID_SLOT : v;
}

/** The inode view of a decoded header. */
export function inodeFromHeader(h: DinodeHeaderT): Inode {
  return {
    blkno: h.i_blkno,
    generation: h.i_generation,
    fsGeneration: h.i_fs_generation,
    mode: h.i_mode,
    uid: h.i_uid,
    gid: h.i_gid,
    size: h.i_size,
    nlink: (h.i_links_count | (h.i_links_count_hi << OCFS2_LINKS_HI_SHIFT)) >>> 0,
    clusters: h.i_clusters,
    flags: h.i_flags,
    dynFeatures: h.i_dyn_features,
    attr: h.i_attr,
    atime: { sec: h.i_atime, nsec: h.i_atime_nsec },
    ctime: { sec: h.i_ctime, nsec: h.i_ctime_nsec },
    mtime: { sec: h.i_mtime, nsec: h.i_mtime_nsec },
    dtime: h.i_dtime,
    lastEbBlk: h.i_last_eb_blk,
    xattrLoc: h.i_xattr_loc,
    xattrInlineSize: inlineXattrSize(h),
    dxRoot: h.i_dx_root,
    refcountLoc: h.i_refcount_loc,
    suballocSlot: slot(h.i_suballoc_slot),
    suballocBit: h.i_suballoc_bit,
    suballocLoc: h.i_suballoc_loc,
    orphanedSlot: slot(h.i_orphaned_slot),
    dioOrphanedSlot: slot(h.i_dio_orphaned_slot),
    rdev: Id1Dev.decode(h.id1, 0).i_rdev,
    check: { crc32e: h.i_check.readUInt32LE(0), ecc: h.i_check.readUInt16LE(4) },
  };
}

/** Validate and decode the inode in `buf` (block `blkno`). */
export function decodeInode(buf: Buffer, blkno: number, fsGeneration?: number, opts: DinodeValidateOptions = {}): Inode {
  return inodeFromHeader(validateDinode(buf, blkno, fsGeneration, opts));
}

/** Split a link count into i_links_count / i_links_count_hi. */
export function setLinksCount(h: DinodeHeaderT, nlink: number): void {
  h.i_links_count = nlink & 0xffff;
  h.i_links_count_hi = (nlink >>> OCFS2_LINKS_HI_SHIFT) & 0xffff;
}

/** Linux's new_decode_dev for the 32-bit encoding OCFS2 stores in i_rdev (huge_encode_dev). */
export function decodeRdev(rdev: bigint): { major: number; minor: number } {
  const dev = Number(rdev & 0xffffffffn);
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

/** Linux's new_encode_dev. */
export function encodeRdev(major: number, minor: number): bigint {
  return BigInt((((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0));
}

/* ---- id2 accessors ---------------------------------------------------------------------- */

/** id2.i_list: the root of the inode's extent tree. */
export function inodeExtentList(buf: Buffer, blkno: number): ExtentList {
  const h = DinodeHeader.decode(buf, 0);
  return decodeExtentList(buf, DINODE_ID2_OFFSET, blkno, buf.length - inlineXattrSize(h));
}

export function writeInodeExtentList(buf: Buffer, list: ExtentList): void {
  encodeExtentList(list, buf, DINODE_ID2_OFFSET);
}

export interface InlineData {
  /** id_count: bytes usable for data. */
  count: number;
  /** A view (not a copy) of id_count bytes at 0xC8. */
  data: Buffer;
}

/** id2.i_data (dyn INLINE_DATA_FL). */
export function inodeInlineData(buf: Buffer, blkno: number): InlineData {
  const h = DinodeHeader.decode(buf, 0);
  const { id_count } = InlineDataHeader.decode(buf, DINODE_ID2_OFFSET);
  const max = maxInlineData(buf.length, inlineXattrSize(h));
  if (id_count > max) {
    throw new Ocfs2CorruptError(blkno, 'dinode inline data id_count too large', `id_count ${id_count}, max ${max}`);
  }
  return { count: id_count, data: buf.subarray(INLINE_DATA_OFFSET, INLINE_DATA_OFFSET + id_count) };
}

/** Set up id2 as an empty inline-data area of `count` bytes (zeroing it). */
export function writeInlineDataHeader(buf: Buffer, count: number): void {
  InlineDataHeader.encode({ id_count: count, id_reserved0: 0, id_reserved1: 0 }, buf, DINODE_ID2_OFFSET);
}

/** id2.i_chain (allocator inodes, CHAIN_FL). */
export function inodeChainList(buf: Buffer, blkno: number): ChainList {
  return decodeChainList(buf, DINODE_ID2_OFFSET, blkno);
}

export function writeInodeChainList(buf: Buffer, cl: ChainList): void {
  encodeChainList(cl, buf, DINODE_ID2_OFFSET);
}

/** id2.i_lab (local_alloc:NNNN). */
export function inodeLocalAlloc(buf: Buffer, blkno: number): LocalAlloc {
  return decodeLocalAlloc(buf, DINODE_ID2_OFFSET, blkno);
}

export function writeInodeLocalAlloc(buf: Buffer, la: LocalAlloc): void {
  encodeLocalAlloc(la, buf, DINODE_ID2_OFFSET);
}

/** id2.i_dealloc (truncate_log:NNNN). */
export function inodeTruncateLog(buf: Buffer, blkno: number): TruncateLog {
  return decodeTruncateLog(buf, DINODE_ID2_OFFSET, blkno);
}

export function writeInodeTruncateLog(buf: Buffer, tl: TruncateLog): void {
  encodeTruncateLog(tl, buf, DINODE_ID2_OFFSET);
}

/** Where the in-inode xattr header lives, or null without INLINE_XATTR_FL. */
export function inlineXattrArea(buf: Buffer, blkno: number): { offset: number; size: number } | null {
  const h = DinodeHeader.decode(buf, 0);
  const size = inlineXattrSize(h);
  if (size === 0) return null;
  if (size > buf.length - DINODE_ID2_OFFSET) {
    throw new Ocfs2CorruptError(blkno, 'dinode i_xattr_inline_size out of range', `${size}`);
  }
  return { offset: buf.length - size, size };
}

/** PATH_MAX - 1: the longest symlink target (ocfs2_symlink: the target and its NUL fit in PATH_MAX). */
export const SYMLINK_MAX_TARGET = 4095;

/**
 * The longest i_size a symlink inode can have: a fast symlink's target and
 * its NUL fit in id2 (ocfs2_fast_symlink_chars), a slow one's in its
 * clusters, and neither is longer than PATH_MAX - 1.  Checked before i_size
 * sizes a buffer or a read.
 */
export function symlinkMaxSize(h: Pick<DinodeHeaderT, 'i_clusters'>, blocksize: number, clusterSize: number): number {
  if (h.i_clusters === 0) return fastSymlinkChars(blocksize) - 1;
  return Math.min(SYMLINK_MAX_TARGET, h.i_clusters * clusterSize - 1);
}

/** symlinkMaxSize as a check: corruption of the inode block naming the field. */
export function validateSymlinkSize(h: Pick<DinodeHeaderT, 'i_clusters' | 'i_size'>, blkno: number, blocksize: number, clusterSize: number): void {
  const max = symlinkMaxSize(h, blocksize, clusterSize);
  if (h.i_size > max) {
    throw new Ocfs2CorruptError(blkno, `${h.i_clusters === 0 ? 'fast' : 'slow'} symlink i_size too large`, `i_size ${h.i_size}, max ${max}`);
  }
}

/**
 * A fast symlink's target (i_clusters == 0): i_size bytes at id2, which must
 * fit with their NUL in the block.  Returns a copy.
 */
export function fastSymlinkTarget(buf: Buffer, blkno: number): Buffer {
  const h = decodeOrCorrupt(DinodeHeader, buf, 0, blkno);
  validateSymlinkSize({ i_clusters: 0, i_size: h.i_size }, blkno, buf.length, 0);
  return Buffer.from(buf.subarray(DINODE_ID2_OFFSET, DINODE_ID2_OFFSET + h.i_size));
}
