/**
 * Quota file headers (ro_compat USRQUOTA / GRPQUOTA; ocfs2_fs.h).  Global
 * files aquota.user / aquota.group and per-slot local files
 * aquota.user:NNNN / aquota.group:NNNN; every quota block ends in an 8-byte
 * ocfs2_disk_dqtrailer holding the block check (OCFS2_QBLK_RESERVED_SPACE).
 * Headers only: the quota tree itself belongs to the quota code.
 */
import { defineStruct } from '../struct';

export const OCFS2_GLOBAL_QMAGICS = [0x0cf52470, 0x0cf52471] as const; // user, group
export const OCFS2_LOCAL_QMAGICS = [0x0cf524c0, 0x0cf524c1] as const;
export const OCFS2_QBLK_RESERVED_SPACE = 8;
/** Local quota dqi_flags: the file is clean (quota was turned off cleanly). */
export const OLQF_CLEAN = 0x0001;
/** The quota tree root is block 1 of the global file. */
export const QT_TREEOFF = 1;

export const DiskDqHeader = defineStruct('ocfs2_disk_dqheader', 8, 'le', [
  { name: 'dqh_magic', offset: 0x00, type: 'u32' },
  { name: 'dqh_version', offset: 0x04, type: 'u32' },
] as const);
/** The info header follows the generic header in block 0. */
export const QUOTA_INFO_OFFSET = DiskDqHeader.size;

export const GlobalDiskDqinfo = defineStruct('ocfs2_global_disk_dqinfo', 24, 'le', [
  { name: 'dqi_bgrace', offset: 0x00, type: 'u32' },
  { name: 'dqi_igrace', offset: 0x04, type: 'u32' },
  { name: 'dqi_syncms', offset: 0x08, type: 'u32' },
  { name: 'dqi_blocks', offset: 0x0c, type: 'u32' },
  { name: 'dqi_free_blk', offset: 0x10, type: 'u32' },
  { name: 'dqi_free_entry', offset: 0x14, type: 'u32' },
] as const);

export const GlobalDiskDqblk = defineStruct('ocfs2_global_disk_dqblk', 88, 'le', [
  { name: 'dqb_id', offset: 0x00, type: 'u32' },
  { name: 'dqb_use_count', offset: 0x04, type: 'u32' },
  { name: 'dqb_ihardlimit', offset: 0x08, type: 'u64n' },
  { name: 'dqb_isoftlimit', offset: 0x10, type: 'u64n' },
  { name: 'dqb_curinodes', offset: 0x18, type: 'u64n' },
  { name: 'dqb_bhardlimit', offset: 0x20, type: 'u64n' },
  { name: 'dqb_bsoftlimit', offset: 0x28, type: 'u64n' },
  { name: 'dqb_curspace', offset: 0x30, type: 'u64n' },
  { name: 'dqb_btime', offset: 0x38, type: 'u64n' },
  { name: 'dqb_itime', offset: 0x40, type: 'u64n' },
  { name: 'dqb_pad1', offset: 0x48, type: 'u64n' },
  { name: 'dqb_pad2', offset: 0x50, type: 'u64n' },
] as const);

/** qt_disk_dqdbheader: the header of a quota tree leaf block. */
export const DiskDqdbHeader = defineStruct('qt_disk_dqdbheader', 16, 'le', [
  { name: 'dqdh_next_free', offset: 0x00, type: 'u32' },
  { name: 'dqdh_prev_free', offset: 0x04, type: 'u32' },
  { name: 'dqdh_entries', offset: 0x08, type: 'u16' },
  { name: 'dqdh_pad1', offset: 0x0a, type: 'u16' },
  { name: 'dqdh_pad2', offset: 0x0c, type: 'u32' },
] as const);

export const LocalDiskDqinfo = defineStruct('ocfs2_local_disk_dqinfo', 12, 'le', [
  { name: 'dqi_flags', offset: 0x00, type: 'u32' },
  { name: 'dqi_chunks', offset: 0x04, type: 'u32' },
  { name: 'dqi_blocks', offset: 0x08, type: 'u32' },
] as const);

/** A local chunk header block: dqc_free, then the entry bitmap from byte 4. */
export const LocalDiskChunk = defineStruct('ocfs2_local_disk_chunk', 4, 'le', [
  { name: 'dqc_free', offset: 0x00, type: 'u32' },
] as const);

export const LocalDiskDqblk = defineStruct('ocfs2_local_disk_dqblk', 24, 'le', [
  { name: 'dqb_id', offset: 0x00, type: 'u64n' },
  { name: 'dqb_spacemod', offset: 0x08, type: 'u64n' },
  { name: 'dqb_inodemod', offset: 0x10, type: 'u64n' },
] as const);

/** Offset of the block check (the dqtrailer) in a quota block. */
export function quotaCheckOffset(blocksize: number): number {
  return blocksize - OCFS2_QBLK_RESERVED_SPACE;
}

/** The ocfs2 quota format versions (OCFS2_GLOBAL_QVERSIONS, OCFS2_LOCAL_QVERSIONS): 0 for both types. */
export const OCFS2_QUOTA_VERSION = 0;
/** Default grace periods (OCFS2_DEF_BLOCK_GRACE / OCFS2_DEF_INODE_GRACE: 7 days, in seconds). */
export const OCFS2_DEF_GRACE = 604800;

/**
 * Geometry of the quota tree of a global file (quota_tree.c, ocfs2-tools
 * ocfs2_qtree_depth): a block of `usable` bytes holds `epb` 32-bit references;
 * the depth is the number of levels needed to index 2^32 ids.
 */
export interface QtreeGeometry { usable: number; epb: number; depth: number; entriesPerLeaf: number }

export function qtreeGeometry(blocksize: number): QtreeGeometry {
  const usable = blocksize - OCFS2_QBLK_RESERVED_SPACE;
  const epb = usable >>> 2;
  let entries = epb;
  let depth = 1;
  for (; entries < 2 ** 32; depth++) entries *= epb;
  // qtree_dqstr_in_blk: entries after the leaf header.
  const entriesPerLeaf = Math.floor((usable - DiskDqdbHeader.size) / GlobalDiskDqblk.size);
  return { usable, epb, depth, entriesPerLeaf };
}

/** get_index (quota_tree.c): the reference slot of `id` in a tree block at `depth`. */
export function qtreeIndex(g: QtreeGeometry, id: number, depth: number): number {
  let n = id >>> 0;
  for (let d = g.depth - depth - 1; d > 0; d--) n = Math.floor(n / g.epb);
  return n % g.epb;
}

/**
 * Geometry of a local quota file (quota_local.c ol_*): block 0 is the info
 * block; chunk c is a header block (dqc_free + bitmap) at
 * 1 + c * (chunkBlocks + 1) followed by chunkBlocks blocks of local dquots.
 */
export interface LocalQuotaGeometry { entriesPerBlock: number; chunkBlocks: number; chunkEntries: number }

export function localQuotaGeometry(blocksize: number): LocalQuotaGeometry {
  const entriesPerBlock = Math.floor((blocksize - OCFS2_QBLK_RESERVED_SPACE) / LocalDiskDqblk.size);
  const chunkBlocks = Math.floor(((blocksize - LocalDiskChunk.size - OCFS2_QBLK_RESERVED_SPACE) * 8) / entriesPerBlock);
  return { entriesPerBlock, chunkBlocks, chunkEntries: chunkBlocks * entriesPerBlock };
}

/** ol_quota_chunk_block: file block of chunk c's header. */
export function localChunkBlock(g: LocalQuotaGeometry, c: number): number {
  return 1 + (g.chunkBlocks + 1) * c;
}

/** ol_dqblk_block / ol_dqblk_block_off: file block and byte offset of entry `off` of chunk c. */
export function localDqblkLocation(g: LocalQuotaGeometry, c: number, off: number): { block: number; offset: number } {
  return { block: localChunkBlock(g, c) + 1 + Math.floor(off / g.entriesPerBlock), offset: (off % g.entriesPerBlock) * LocalDiskDqblk.size };
}
