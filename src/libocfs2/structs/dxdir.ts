/**
 * Indexed directories (INDEXED_DIRS feature; dinode dyn flag INDEXED_DIR_FL,
 * i_dx_root): the dx root block "DXDIR01" and the dx leaf block "DXLEAF1"
 * (kernel fs/ocfs2/ocfs2_fs.h, dir.c).
 *
 * The root holds either the dx entries themselves (dr_flags INLINE) or an
 * extent list whose cpos space is the 32-bit major hash; each cluster of that
 * tree is a run of dx leaf blocks, and the minor hash picks the block within
 * the cluster (see dirhash.ts `dxLeafBlockFor`).  A dx entry only records the
 * hash and the physical dir block holding the name.  The kernel appends new
 * entries at the end of a leaf and sorts only when it splits a leaf, so the
 * entries of a list are not in hash order in general.
 */
import { defineStruct } from '../struct';
import { Ocfs2CorruptError } from '../errors';
import {
  OCFS2_DX_ROOT_SIGNATURE, OCFS2_DX_LEAF_SIGNATURE, OCFS2_DX_FLAG_INLINE, hasSignature, signatureBytes, signatureText,
} from '../constants';
import { decodeExtentList, decodeOrCorrupt, encodeExtentList, extentRecsFitting, type ExtentList } from './extent';

/* ---- ocfs2_dx_entry / ocfs2_dx_entry_list ----------------------------------------------- */

export const DxEntry = defineStruct('ocfs2_dx_entry', 16, 'le', [
  { name: 'dx_major_hash', offset: 0x00, type: 'u32' },
  { name: 'dx_minor_hash', offset: 0x04, type: 'u32' },
  { name: 'dx_dirent_blk', offset: 0x08, type: 'u64' },
] as const);
export type DxEntry = ReturnType<typeof DxEntry.decode>;

/** Header of an entry list; the entries follow at +8. */
export const DxEntryListHeader = defineStruct('ocfs2_dx_entry_list', 8, 'le', [
  { name: 'de_reserved', offset: 0x00, type: 'u32' },
  { name: 'de_count', offset: 0x04, type: 'u16' },
  { name: 'de_num_used', offset: 0x06, type: 'u16' },
] as const);
export type DxEntryListHeader = ReturnType<typeof DxEntryListHeader.decode>;

export interface DxEntryList {
  /** de_count: capacity. */
  count: number;
  /** The used entries, [0, de_num_used). */
  entries: DxEntry[];
  /** de_reserved, kept for exact round trips. */
  reserved: number;
}

/** How many dx entries fit between a list header at `off` and `end`. */
export function dxEntriesFitting(off: number, end: number): number {
  return Math.max(0, Math.floor((end - off - DxEntryListHeader.size) / DxEntry.size));
}

/** Decode the entry list at `off`, checking de_count fits before `end` and de_num_used <= de_count. */
export function decodeDxEntryList(buf: Buffer, off: number, blkno: number, end = buf.length): DxEntryList {
  if (off + DxEntryListHeader.size > end) {
    throw new Ocfs2CorruptError(blkno, 'dx entry list header outside the block', `offset ${off}`);
  }
  const h = DxEntryListHeader.decode(buf, off);
  const fit = dxEntriesFitting(off, end);
  if (h.de_count > fit) {
    throw new Ocfs2CorruptError(blkno, 'dx entry list de_count too large', `de_count ${h.de_count}, room for ${fit}`);
  }
  if (h.de_num_used > h.de_count) {
    throw new Ocfs2CorruptError(blkno, 'dx entry list de_num_used beyond de_count',
      `de_num_used ${h.de_num_used}, de_count ${h.de_count}`);
  }
  const entries: DxEntry[] = [];
  for (let i = 0; i < h.de_num_used; i++) {
    entries.push(decodeOrCorrupt(DxEntry, buf, off + DxEntryListHeader.size + i * DxEntry.size, blkno));
  }
  return { count: h.de_count, entries, reserved: h.de_reserved };
}

/** Write the list at `off`: header, used entries, zeros in the unused slots up to count. */
export function encodeDxEntryList(list: DxEntryList, buf: Buffer, off: number): void {
  const at0 = off + DxEntryListHeader.size;
  if (list.entries.length > list.count || at0 + list.count * DxEntry.size > buf.length) {
    throw new RangeError(`dx entry list: ${list.entries.length} entries / count ${list.count} do not fit`);
  }
  DxEntryListHeader.encode({ de_reserved: list.reserved, de_count: list.count, de_num_used: list.entries.length }, buf, off);
  buf.fill(0, at0, at0 + list.count * DxEntry.size);
  list.entries.forEach((e, i) => DxEntry.encode(e, buf, at0 + i * DxEntry.size));
}

/** `ocfs2_dx_entry_list_insert`: append (the kernel does not keep lists sorted). */
export function dxEntryListAppend(list: DxEntryList, e: DxEntry): boolean {
  if (list.entries.length >= list.count) return false;
  list.entries.push({ ...e });
  return true;
}

/** `ocfs2_dx_list_remove_entry`: remove entry `index`, shifting the rest down. */
export function dxEntryListRemove(list: DxEntryList, index: number): void {
  if (index < 0 || index >= list.entries.length) throw new RangeError(`dx entry index ${index} out of range`);
  list.entries.splice(index, 1);
}

/** Sort order of a leaf split (`dx_leaf_sort_cmp`): major, then minor. */
export function compareDxEntries(a: DxEntry, b: DxEntry): number {
  return a.dx_major_hash - b.dx_major_hash || a.dx_minor_hash - b.dx_minor_hash;
}

/* ---- ocfs2_dx_root_block -------------------------------------------------------------------- */

/** The fixed part of the root block; the union (extent list or entry list) starts at 0xC0. */
export const DxRootBlockHeader = defineStruct('ocfs2_dx_root_block', 0xc0, 'le', [
  { name: 'dr_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'dr_check', offset: 0x08, type: 'bytes', size: 8 },
  { name: 'dr_suballoc_slot', offset: 0x10, type: 'u16' },
  { name: 'dr_suballoc_bit', offset: 0x12, type: 'u16' },
  { name: 'dr_fs_generation', offset: 0x14, type: 'u32' },
  { name: 'dr_blkno', offset: 0x18, type: 'u64' },
  { name: 'dr_last_eb_blk', offset: 0x20, type: 'u64' },
  { name: 'dr_clusters', offset: 0x28, type: 'u32' },
  { name: 'dr_flags', offset: 0x2c, type: 'u8' },
  { name: 'dr_reserved0', offset: 0x2d, type: 'u8' },
  { name: 'dr_reserved1', offset: 0x2e, type: 'u16' },
  { name: 'dr_dir_blkno', offset: 0x30, type: 'u64' },
  { name: 'dr_num_entries', offset: 0x38, type: 'u32' },
  { name: 'dr_reserved2', offset: 0x3c, type: 'u32' },
  { name: 'dr_free_blk', offset: 0x40, type: 'u64' },
  { name: 'dr_suballoc_loc', offset: 0x48, type: 'u64' },
  { name: 'dr_reserved3', offset: 0x50, type: 'bytes', size: 14 * 8 },
] as const);
export type DxRootBlockHeader = ReturnType<typeof DxRootBlockHeader.decode>;

/** Offset of the dr_list / dr_entries union. */
export const DX_ROOT_UNION_OFFSET = DxRootBlockHeader.size;
/** Metaecc check offset of a dx root (dr_check). */
export const DX_ROOT_CHECK_OFFSET = DxRootBlockHeader.offsetOf('dr_check');

/** `ocfs2_extent_recs_per_dx_root`: (bs - 0xD0) / 16, 243 at 4 KiB. */
export function dxRootExtentRecs(blockSize: number): number {
  return extentRecsFitting(DX_ROOT_UNION_OFFSET, blockSize);
}

/** `ocfs2_dx_entries_per_root`: (bs - 0xC8) / 16, 243 at 4 KiB. */
export function dxEntriesPerRoot(blockSize: number): number {
  return dxEntriesFitting(DX_ROOT_UNION_OFFSET, blockSize);
}

export interface DxRoot {
  header: DxRootBlockHeader;
  inline: boolean;
  /** dr_entries when inline. */
  entries?: DxEntryList;
  /** dr_list when not inline (cpos = major hash). */
  list?: ExtentList;
}

export interface DxValidateOptions {
  /** The superblock's fs generation; checked when given. */
  fsGeneration?: number;
  /** The owning directory inode; dr_dir_blkno is checked when given. */
  dirBlkno?: number;
}

/**
 * Decode and validate a dx root block (`ocfs2_validate_dx_root`, minus the
 * ECC): signature "DXDIR01", dr_blkno equal to the block, and optionally the
 * fs generation and owning inode.
 */
export function decodeDxRoot(buf: Buffer, blkno: number, opts: DxValidateOptions = {}): DxRoot {
  if (!hasSignature(buf, 0, OCFS2_DX_ROOT_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, `dx root signature is ${signatureText(buf, 0)}, expected "${OCFS2_DX_ROOT_SIGNATURE}"`);
  }
  const header = decodeOrCorrupt(DxRootBlockHeader, buf, 0, blkno);
  if (header.dr_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'dx root dr_blkno does not match the block', `dr_blkno=${header.dr_blkno}`);
  }
  if (opts.fsGeneration !== undefined && header.dr_fs_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'dx root dr_fs_generation mismatch', `found 0x${header.dr_fs_generation.toString(16)}`);
  }
  if (opts.dirBlkno !== undefined && header.dr_dir_blkno !== opts.dirBlkno) {
    throw new Ocfs2CorruptError(blkno, 'dx root dr_dir_blkno does not match the directory', `dr_dir_blkno=${header.dr_dir_blkno}`);
  }
  const inline = (header.dr_flags & OCFS2_DX_FLAG_INLINE) !== 0;
  if (inline) return { header, inline, entries: decodeDxEntryList(buf, DX_ROOT_UNION_OFFSET, blkno) };
  return { header, inline, list: decodeExtentList(buf, DX_ROOT_UNION_OFFSET, blkno) };
}

/** Write a dx root into a block-sized buffer (bytes past the union's records are left alone). */
export function encodeDxRoot(root: DxRoot, buf: Buffer): Buffer {
  const flags = root.inline ? root.header.dr_flags | OCFS2_DX_FLAG_INLINE : root.header.dr_flags & ~OCFS2_DX_FLAG_INLINE;
  DxRootBlockHeader.encode({ ...root.header, dr_flags: flags }, buf, 0);
  if (root.inline) {
    if (!root.entries) throw new RangeError('inline dx root without entries');
    encodeDxEntryList(root.entries, buf, DX_ROOT_UNION_OFFSET);
  } else {
    if (!root.list) throw new RangeError('dx root without extent list');
    encodeExtentList(root.list, buf, DX_ROOT_UNION_OFFSET);
  }
  return buf;
}

/** A fresh root header (signature set, everything else zero or as given). */
export function newDxRootHeader(o: Partial<DxRootBlockHeader> & { dr_blkno: number; dr_dir_blkno: number }): DxRootBlockHeader {
  return { ...DxRootBlockHeader.zero(), dr_signature: signatureBytes(OCFS2_DX_ROOT_SIGNATURE), ...o };
}

/* ---- ocfs2_dx_leaf ---------------------------------------------------------------------------- */

/** The fixed part of a dx leaf; dl_list starts at 0x28. */
export const DxLeafHeader = defineStruct('ocfs2_dx_leaf', 0x28, 'le', [
  { name: 'dl_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'dl_check', offset: 0x08, type: 'bytes', size: 8 },
  { name: 'dl_blkno', offset: 0x10, type: 'u64' },
  { name: 'dl_fs_generation', offset: 0x18, type: 'u32' },
  { name: 'dl_reserved0', offset: 0x1c, type: 'u32' },
  { name: 'dl_reserved1', offset: 0x20, type: 'u64' },
] as const);
export type DxLeafHeader = ReturnType<typeof DxLeafHeader.decode>;

export const DX_LEAF_LIST_OFFSET = DxLeafHeader.size;
/** Metaecc check offset of a dx leaf (dl_check). */
export const DX_LEAF_CHECK_OFFSET = DxLeafHeader.offsetOf('dl_check');

/** `ocfs2_dx_entries_per_leaf`: (bs - 0x30) / 16, 253 at 4 KiB. */
export function dxEntriesPerLeaf(blockSize: number): number {
  return dxEntriesFitting(DX_LEAF_LIST_OFFSET, blockSize);
}

export interface DxLeaf {
  header: DxLeafHeader;
  list: DxEntryList;
}

/**
 * Decode and validate a dx leaf (`ocfs2_validate_dx_leaf`, minus the ECC):
 * signature "DXLEAF1", dl_blkno equal to the block, optionally fs generation.
 */
export function decodeDxLeaf(buf: Buffer, blkno: number, opts: DxValidateOptions = {}): DxLeaf {
  if (!hasSignature(buf, 0, OCFS2_DX_LEAF_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, `dx leaf signature is ${signatureText(buf, 0)}, expected "${OCFS2_DX_LEAF_SIGNATURE}"`);
  }
  const header = decodeOrCorrupt(DxLeafHeader, buf, 0, blkno);
  if (header.dl_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'dx leaf dl_blkno does not match the block', `dl_blkno=${header.dl_blkno}`);
  }
  if (opts.fsGeneration !== undefined && header.dl_fs_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'dx leaf dl_fs_generation mismatch', `found 0x${header.dl_fs_generation.toString(16)}`);
  }
  return { header, list: decodeDxEntryList(buf, DX_LEAF_LIST_OFFSET, blkno) };
}

/** Write a dx leaf into a block-sized buffer. */
export function encodeDxLeaf(leaf: DxLeaf, buf: Buffer): Buffer {
  DxLeafHeader.encode(leaf.header, buf, 0);
  encodeDxEntryList(leaf.list, buf, DX_LEAF_LIST_OFFSET);
  return buf;
}

/** A fresh, empty leaf (`ocfs2_dx_dir_format_cluster` for one block). */
export function newDxLeaf(blockSize: number, blkno: number, fsGeneration: number): DxLeaf {
  return {
    header: {
      ...DxLeafHeader.zero(), dl_signature: signatureBytes(OCFS2_DX_LEAF_SIGNATURE),
      dl_blkno: blkno, dl_fs_generation: fsGeneration >>> 0,
    },
    list: { count: dxEntriesPerLeaf(blockSize), entries: [], reserved: 0 },
  };
}
