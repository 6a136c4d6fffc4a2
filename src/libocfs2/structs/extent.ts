/**
 * Extent trees: ocfs2_extent_list (16-byte header + 16-byte records) and the
 * extent block "EXBLK01" (ocfs2_fs.h).  The same list shape is embedded in
 * dinodes (id2 at 0xC0), extent blocks (0x30), discontiguous group
 * descriptors (0x140), refcount trees, dx roots and xattr trees.
 *
 * Units: e_cpos and cluster counts are clusters (hash values for dx/xattr
 * trees), e_blkno is a block number.
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct, StructLayoutError, type StructDef } from '../struct';
import {
  OCFS2_EXTENT_BLOCK_SIGNATURE, hasSignature, signatureText,
} from '../constants';

export const ExtentListHeader = defineStruct('ocfs2_extent_list', 16, 'le', [
  { name: 'l_tree_depth', offset: 0x00, type: 'u16' },
  { name: 'l_count', offset: 0x02, type: 'u16' },
  { name: 'l_next_free_rec', offset: 0x04, type: 'u16' },
  { name: 'l_reserved1', offset: 0x06, type: 'u16' },
  { name: 'l_reserved2', offset: 0x08, type: 'u64n' },
] as const);

/** Leaf view of ocfs2_extent_rec (l_tree_depth == 0). */
export const ExtentRecLeaf = defineStruct('ocfs2_extent_rec', 16, 'le', [
  { name: 'e_cpos', offset: 0x00, type: 'u32' },
  { name: 'e_leaf_clusters', offset: 0x04, type: 'u16' },
  { name: 'e_reserved1', offset: 0x06, type: 'u8' },
  { name: 'e_flags', offset: 0x07, type: 'u8' },
  { name: 'e_blkno', offset: 0x08, type: 'u64' },
] as const);

/** Interior view of the same 16 bytes (l_tree_depth > 0): the length is a u32. */
export const ExtentRecInterior = defineStruct('ocfs2_extent_rec(interior)', 16, 'le', [
  { name: 'e_cpos', offset: 0x00, type: 'u32' },
  { name: 'e_int_clusters', offset: 0x04, type: 'u32' },
  { name: 'e_blkno', offset: 0x08, type: 'u64' },
] as const);

export const EXTENT_REC_SIZE = ExtentRecLeaf.size;

export const ExtentBlockHeader = defineStruct('ocfs2_extent_block', 0x30, 'le', [
  { name: 'h_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'h_check', offset: 0x08, type: 'bytes', size: 8 },
  { name: 'h_suballoc_slot', offset: 0x10, type: 'u16' },
  { name: 'h_suballoc_bit', offset: 0x12, type: 'u16' },
  { name: 'h_fs_generation', offset: 0x14, type: 'u32' },
  { name: 'h_blkno', offset: 0x18, type: 'u64' },
  { name: 'h_suballoc_loc', offset: 0x20, type: 'u64' },
  { name: 'h_next_leaf_blk', offset: 0x28, type: 'u64' },
] as const);
/** h_list follows the header. */
export const EXTENT_BLOCK_LIST_OFFSET = ExtentBlockHeader.size;

export type ExtentBlockHeaderT = ReturnType<typeof ExtentBlockHeader.decode>;

/** One record, with the length read according to the list's depth. */
export interface ExtentRec {
  cpos: number;
  /** e_leaf_clusters (leaf) or e_int_clusters (interior). */
  clusters: number;
  /** e_flags (leaf only; 0 in interior records). */
  flags: number;
  /** e_reserved1 (leaf only), kept for exact round trips. */
  reserved1: number;
  blkno: number;
}

export interface ExtentList {
  treeDepth: number;
  count: number;
  nextFreeRec: number;
  /** l_reserved1 / l_reserved2, kept for exact round trips. */
  reserved1: number;
  reserved2: bigint;
  /** The used records, [0, nextFreeRec). */
  recs: ExtentRec[];
}

/** How many records fit between `off` (the list header) and `end`. */
export function extentRecsFitting(off: number, end: number): number {
  return Math.max(0, Math.floor((end - off - ExtentListHeader.size) / EXTENT_REC_SIZE));
}

/**
 * Decode the list at `off`.  Checks that l_count fits before `end` (default:
 * end of buffer) and that l_next_free_rec <= l_count.
 */
export function decodeExtentList(buf: Buffer, off: number, blkno: number, end = buf.length): ExtentList {
  if (off + ExtentListHeader.size > end) {
    throw new Ocfs2CorruptError(blkno, 'extent list header outside the block', `offset ${off}`);
  }
  const h = ExtentListHeader.decode(buf, off);
  const fit = extentRecsFitting(off, end);
  if (h.l_count > fit) {
    throw new Ocfs2CorruptError(blkno, 'extent list l_count too large', `l_count ${h.l_count}, room for ${fit}`);
  }
  if (h.l_next_free_rec > h.l_count) {
    throw new Ocfs2CorruptError(blkno, 'extent list l_next_free_rec beyond l_count',
      `l_next_free_rec ${h.l_next_free_rec}, l_count ${h.l_count}`);
  }
  const recs: ExtentRec[] = [];
  for (let i = 0; i < h.l_next_free_rec; i++) {
    recs.push(decodeExtentRec(buf, off + ExtentListHeader.size + i * EXTENT_REC_SIZE, h.l_tree_depth, blkno));
  }
  return {
    treeDepth: h.l_tree_depth, count: h.l_count, nextFreeRec: h.l_next_free_rec,
    reserved1: h.l_reserved1, reserved2: h.l_reserved2, recs,
  };
}

function decodeExtentRec(buf: Buffer, at: number, depth: number, blkno: number): ExtentRec {
  const blk = buf.readBigUInt64LE(at + 8);
  if (blk > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Ocfs2CorruptError(blkno, 'extent record e_blkno out of range', `0x${blk.toString(16)}`);
  }
  if (depth > 0) {
    const r = ExtentRecInterior.decode(buf, at);
    return { cpos: r.e_cpos, clusters: r.e_int_clusters, flags: 0, reserved1: 0, blkno: r.e_blkno };
  }
  const r = ExtentRecLeaf.decode(buf, at);
  return { cpos: r.e_cpos, clusters: r.e_leaf_clusters, flags: r.e_flags, reserved1: r.e_reserved1, blkno: r.e_blkno };
}

/**
 * Write the list at `off`: header and the used records.  Record slots past
 * l_next_free_rec are left as they are (the kernel leaves stale records
 * there too); clear them yourself when building a block from scratch.
 */
export function encodeExtentList(list: ExtentList, buf: Buffer, off: number): void {
  if (list.recs.length !== list.nextFreeRec) {
    throw new RangeError(`extent list: ${list.recs.length} records but nextFreeRec ${list.nextFreeRec}`);
  }
  if (list.nextFreeRec > list.count || off + ExtentListHeader.size + list.count * EXTENT_REC_SIZE > buf.length) {
    throw new RangeError(`extent list: count ${list.count} / nextFreeRec ${list.nextFreeRec} do not fit`);
  }
  ExtentListHeader.encode({
    l_tree_depth: list.treeDepth, l_count: list.count, l_next_free_rec: list.nextFreeRec,
    l_reserved1: list.reserved1, l_reserved2: list.reserved2,
  }, buf, off);
  const recsAt = off + ExtentListHeader.size;
  list.recs.forEach((r, i) => {
    const at = recsAt + i * EXTENT_REC_SIZE;
    if (list.treeDepth > 0) {
      ExtentRecInterior.encode({ e_cpos: r.cpos, e_int_clusters: r.clusters, e_blkno: r.blkno }, buf, at);
    } else {
      ExtentRecLeaf.encode({
        e_cpos: r.cpos, e_leaf_clusters: r.clusters, e_reserved1: r.reserved1, e_flags: r.flags, e_blkno: r.blkno,
      }, buf, at);
    }
  });
}

/** An empty list of `count` records (a new inode's or extent block's). */
export function emptyExtentList(count: number, treeDepth = 0): ExtentList {
  return { treeDepth, count, nextFreeRec: 0, reserved1: 0, reserved2: 0n, recs: [] };
}

/** ocfs2_extent_recs_per_eb. */
export function extentRecsPerExtentBlock(blocksize: number): number {
  return extentRecsFitting(EXTENT_BLOCK_LIST_OFFSET, blocksize);
}

/* ---- extent block ---------------------------------------------------------- */

export interface ExtentBlock {
  header: ExtentBlockHeaderT;
  list: ExtentList;
}

export interface ValidateOptions {
  /** The superblock's i_fs_generation; checked when given. */
  fsGeneration?: number;
}

/**
 * ocfs2_validate_extent_block (minus the ECC, see blockcheck.ts): signature,
 * h_blkno == the block's own number, h_fs_generation.
 */
export function validateExtentBlock(buf: Buffer, blkno: number, opts: ValidateOptions = {}): void {
  if (!hasSignature(buf, 0, OCFS2_EXTENT_BLOCK_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, 'extent block signature mismatch',
      `found ${signatureText(buf, 0)}, expected "${OCFS2_EXTENT_BLOCK_SIGNATURE}"`);
  }
  const h = readHeaderSafe(buf, blkno);
  if (h.h_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'extent block h_blkno mismatch', `h_blkno ${h.h_blkno}`);
  }
  if (opts.fsGeneration !== undefined && h.h_fs_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'extent block h_fs_generation mismatch',
      `found 0x${h.h_fs_generation.toString(16)}, expected 0x${(opts.fsGeneration >>> 0).toString(16)}`);
  }
}

function readHeaderSafe(buf: Buffer, blkno: number): ExtentBlockHeaderT {
  return decodeOrCorrupt(ExtentBlockHeader, buf, 0, blkno);
}

/**
 * Decode a structure, turning layout failures (short buffer, a 64-bit field
 * beyond 2^53) into Ocfs2CorruptError naming the block.
 */
export function decodeOrCorrupt<T>(def: StructDef<T>, buf: Buffer, off: number, blkno: number): T {
  try {
    return def.decode(buf, off);
  } catch (e) {
    if (e instanceof StructLayoutError) throw new Ocfs2CorruptError(blkno, `${def.name} unreadable`, e.message);
    throw e;
  }
}

/** Validate and decode a whole extent block. */
export function decodeExtentBlock(buf: Buffer, blkno: number, opts: ValidateOptions = {}): ExtentBlock {
  validateExtentBlock(buf, blkno, opts);
  return { header: readHeaderSafe(buf, blkno), list: decodeExtentList(buf, EXTENT_BLOCK_LIST_OFFSET, blkno) };
}

/** Write header and list into `buf` (a block-sized buffer; bytes after the records are left alone). */
export function encodeExtentBlock(eb: ExtentBlock, buf: Buffer): Buffer {
  ExtentBlockHeader.encode(eb.header, buf, 0);
  encodeExtentList(eb.list, buf, EXTENT_BLOCK_LIST_OFFSET);
  return buf;
}

/* ---- record validation (every read of a list, the checker, inspect) ----------------------- */

/** What a list's records are checked against. */
export interface ExtentRecordBounds {
  /** Blocks in the volume: e_blkno (and a leaf's whole run) must lie inside. */
  blockCount: number;
  /** Blocks per cluster: a leaf's e_blkno is cluster aligned. */
  clusterBlocks: number;
  /**
   * The parent record's range [start, end) of e_cpos (interior record of the level above):
   * every record of this list must lie inside it.
   */
  range?: { start: number; end: number };
  /**
   * Leaf records map disjoint logical ranges (file data, directories, symlinks, dx trees).
   * False for xattr trees, whose e_cpos are name hashes: there only the order is checked.
   */
  disjoint?: boolean;
}

/** One failed check of one record: fsck.ocfs2's problem code, the field and the check. */
export interface ExtentRecordProblem {
  code: 'EXTENT_BLKNO_RANGE' | 'EXTENT_CLUSTERS_OVERRUN' | 'EXTENT_BLKNO_UNALIGNED' | 'EXTENT_OVERLAP' | 'EXTENT_OUT_OF_PARENT';
  /** Index of the record in the list. */
  rec: number;
  field: 'e_blkno' | 'e_cpos' | 'e_leaf_clusters' | 'e_int_clusters';
  check: string;
}

/**
 * The record checks of an extent list (fsck.ocfs2 extent.c check_er/check_el, and
 * the order the kernel's ocfs2_find_path/ocfs2_search_extent_list rely on):
 * e_blkno inside the volume (a leaf's whole run too) and cluster aligned for
 * leaves; records sorted by e_cpos, leaves not overlapping; every record
 * inside the parent's range.  Work is linear in l_next_free_rec, which
 * decodeExtentList has bounded by l_count.
 */
export function extentRecordProblems(list: ExtentList, b: ExtentRecordBounds): ExtentRecordProblem[] {
  const out: ExtentRecordProblem[] = [];
  const leaf = list.treeDepth === 0;
  const lenField = leaf ? 'e_leaf_clusters' : 'e_int_clusters';
  let prevEnd = -1;
  let prevCpos = -1;
  list.recs.forEach((r, i) => {
    // An empty leaf record (the kernel's "empty extent" at index 0) maps nothing.
    if (leaf && r.clusters === 0) return;
    const runBlocks = leaf ? r.clusters * b.clusterBlocks : 1;
    if (r.blkno === 0 || r.blkno >= b.blockCount) {
      out.push({ code: 'EXTENT_BLKNO_RANGE', rec: i, field: 'e_blkno', check: `${r.blkno} outside the volume (${b.blockCount} blocks)` });
    } else if (r.blkno + runBlocks > b.blockCount) {
      // fsck.ocfs2 check_er: the start is inside, the run goes past the end.
      out.push({ code: 'EXTENT_CLUSTERS_OVERRUN', rec: i, field: lenField, check: `${r.blkno} + ${runBlocks} blocks runs past the volume (${b.blockCount} blocks)` });
    } else if (leaf && r.blkno % b.clusterBlocks !== 0) {
      out.push({ code: 'EXTENT_BLKNO_UNALIGNED', rec: i, field: 'e_blkno', check: `${r.blkno} not on a cluster boundary` });
    }
    if (r.cpos < prevCpos || (leaf && b.disjoint !== false && r.cpos < prevEnd) || (!leaf && r.cpos === prevCpos)) {
      out.push({ code: 'EXTENT_OVERLAP', rec: i, field: 'e_cpos', check: `${r.cpos} before the end of record ${i - 1} (${b.disjoint === false || !leaf ? prevCpos : prevEnd})` });
    }
    if (b.range && (r.cpos < b.range.start || (b.disjoint !== false && r.cpos + r.clusters > b.range.end))) {
      out.push({ code: 'EXTENT_OUT_OF_PARENT', rec: i, field: r.cpos < b.range.start ? 'e_cpos' : lenField, check: `[${r.cpos}, ${r.cpos + r.clusters}) outside the parent's range [${b.range.start}, ${b.range.end})` });
    }
    prevCpos = r.cpos;
    prevEnd = Math.max(prevEnd, r.cpos + r.clusters);
  });
  return out;
}

/** extentRecordProblems, the first failure thrown as corruption of block `blkno` (the list's holder). */
export function validateExtentRecords(list: ExtentList, blkno: number, b: ExtentRecordBounds): void {
  const p = extentRecordProblems(list, b)[0];
  if (p) throw new Ocfs2CorruptError(blkno, `extent record ${p.rec} ${p.field}: ${p.check}`, p.code);
}

/**
 * The e_cpos range a child of interior record `i` must stay in: from its e_cpos up to the next
 * record's (the last record is open-ended: ocfs2_find_path sends every cpos past the others there).
 */
export function interiorRecordRange(list: ExtentList, i: number): { start: number; end: number } {
  const r = list.recs[i]!;
  const next = list.recs[i + 1];
  return { start: r.cpos, end: next ? Math.max(next.cpos, r.cpos) : Number.MAX_SAFE_INTEGER };
}
