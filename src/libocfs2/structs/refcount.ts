/**
 * Refcount trees (incompat REFCOUNT_TREE; inode dyn HAS_REFCOUNT,
 * i_refcount_loc): the refcount block "REFCNT1" (ocfs2_fs.h).  A root with
 * OCFS2_REFCOUNT_TREE_FL holds an extent list (keyed by the low 32 bits of
 * the physical cluster) leading to leaf blocks (OCFS2_REFCOUNT_LEAF_FL);
 * otherwise the block holds refcount records directly.  r_cpos is a
 * physical cluster number.  The check is at 0x20 (not 0x08).
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import {
  OCFS2_REFCOUNT_BLOCK_SIGNATURE, OCFS2_REFCOUNT_TREE_FL, hasSignature, signatureText,
} from '../constants';
import { decodeExtentList, decodeOrCorrupt, encodeExtentList, type ExtentList } from './extent';

export const RefcountBlockHeader = defineStruct('ocfs2_refcount_block', 0x80, 'le', [
  { name: 'rf_signature', offset: 0x00, type: 'bytes', size: 8 },
  { name: 'rf_suballoc_slot', offset: 0x08, type: 'u16' },
  { name: 'rf_suballoc_bit', offset: 0x0a, type: 'u16' },
  { name: 'rf_fs_generation', offset: 0x0c, type: 'u32' },
  { name: 'rf_blkno', offset: 0x10, type: 'u64' },
  { name: 'rf_parent', offset: 0x18, type: 'u64' },
  { name: 'rf_check', offset: 0x20, type: 'bytes', size: 8 },
  { name: 'rf_last_eb_blk', offset: 0x28, type: 'u64' },
  { name: 'rf_count', offset: 0x30, type: 'u32' },
  { name: 'rf_flags', offset: 0x34, type: 'u32' },
  { name: 'rf_clusters', offset: 0x38, type: 'u32' },
  { name: 'rf_cpos', offset: 0x3c, type: 'u32' },
  { name: 'rf_generation', offset: 0x40, type: 'u32' },
  { name: 'rf_reserved0', offset: 0x44, type: 'u32' },
  { name: 'rf_suballoc_loc', offset: 0x48, type: 'u64' },
  { name: 'rf_reserved1', offset: 0x50, type: 'bytes', size: 48 },
] as const);

export type RefcountBlockHeaderT = ReturnType<typeof RefcountBlockHeader.decode>;

/** The union at 0x80: rf_records or rf_list. */
export const REFCOUNT_UNION_OFFSET = RefcountBlockHeader.size;

export const RefcountListHeader = defineStruct('ocfs2_refcount_list', 16, 'le', [
  { name: 'rl_count', offset: 0x00, type: 'u16' },
  { name: 'rl_used', offset: 0x02, type: 'u16' },
  { name: 'rl_reserved2', offset: 0x04, type: 'u32' },
  { name: 'rl_reserved1', offset: 0x08, type: 'u64n' },
] as const);

export const RefcountRec = defineStruct('ocfs2_refcount_rec', 16, 'le', [
  { name: 'r_cpos', offset: 0x00, type: 'u64' },
  { name: 'r_clusters', offset: 0x08, type: 'u32' },
  { name: 'r_refcount', offset: 0x0c, type: 'u32' },
] as const);

export type RefcountRecT = ReturnType<typeof RefcountRec.decode>;

export interface RefcountList {
  count: number;
  used: number;
  reserved2: number;
  reserved1: bigint;
  /** The used records, [0, used). */
  recs: RefcountRecT[];
}

export interface RefcountBlock {
  header: RefcountBlockHeaderT;
  /** Set when rf_flags has TREE_FL. */
  list: ExtentList | null;
  /** Set otherwise (a leaf, or a root that holds records itself). */
  records: RefcountList | null;
}

/** ocfs2_refcount_recs_per_rb. */
export function refcountRecsPerBlock(blocksize: number): number {
  return Math.floor((blocksize - REFCOUNT_UNION_OFFSET - RefcountListHeader.size) / RefcountRec.size);
}

export interface RefcountValidateOptions {
  fsGeneration?: number;
}

/** ocfs2_validate_refcount_block (minus the ECC): signature, rf_blkno, rf_fs_generation. */
export function validateRefcountBlock(buf: Buffer, blkno: number, opts: RefcountValidateOptions = {}): RefcountBlockHeaderT {
  if (!hasSignature(buf, 0, OCFS2_REFCOUNT_BLOCK_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, 'refcount block signature mismatch',
      `found ${signatureText(buf, 0)}, expected "${OCFS2_REFCOUNT_BLOCK_SIGNATURE}"`);
  }
  const h = decodeOrCorrupt(RefcountBlockHeader, buf, 0, blkno);
  if (h.rf_blkno !== blkno) {
    throw new Ocfs2CorruptError(blkno, 'refcount block rf_blkno mismatch', `rf_blkno ${h.rf_blkno}`);
  }
  if (opts.fsGeneration !== undefined && h.rf_fs_generation !== (opts.fsGeneration >>> 0)) {
    throw new Ocfs2CorruptError(blkno, 'refcount block rf_fs_generation mismatch',
      `found 0x${h.rf_fs_generation.toString(16)}, expected 0x${(opts.fsGeneration >>> 0).toString(16)}`);
  }
  return h;
}

export function decodeRefcountList(buf: Buffer, off: number, blkno: number): RefcountList {
  const h = decodeOrCorrupt(RefcountListHeader, buf, off, blkno);
  const fit = Math.floor((buf.length - off - RefcountListHeader.size) / RefcountRec.size);
  if (h.rl_count > fit) {
    throw new Ocfs2CorruptError(blkno, 'refcount list rl_count too large', `rl_count ${h.rl_count}, room for ${fit}`);
  }
  if (h.rl_used > h.rl_count) {
    throw new Ocfs2CorruptError(blkno, 'refcount list rl_used beyond rl_count', `rl_used ${h.rl_used}, rl_count ${h.rl_count}`);
  }
  const recs: RefcountRecT[] = [];
  for (let i = 0; i < h.rl_used; i++) {
    recs.push(decodeOrCorrupt(RefcountRec, buf, off + RefcountListHeader.size + i * RefcountRec.size, blkno));
  }
  return { count: h.rl_count, used: h.rl_used, reserved2: h.rl_reserved2, reserved1: h.rl_reserved1, recs };
}

/** Write header and used records (slots past rl_used are left alone). */
export function encodeRefcountList(rl: RefcountList, buf: Buffer, off: number): void {
  if (rl.recs.length !== rl.used || rl.used > rl.count
      || off + RefcountListHeader.size + rl.count * RefcountRec.size > buf.length) {
    throw new RangeError(`refcount list: ${rl.recs.length} recs, used ${rl.used}, count ${rl.count} do not fit`);
  }
  RefcountListHeader.encode({
    rl_count: rl.count, rl_used: rl.used, rl_reserved2: rl.reserved2, rl_reserved1: rl.reserved1,
  }, buf, off);
  const at = off + RefcountListHeader.size;
  rl.recs.forEach((r, i) => RefcountRec.encode(r, buf, at + i * RefcountRec.size));
}

export function decodeRefcountBlock(buf: Buffer, blkno: number, opts: RefcountValidateOptions = {}): RefcountBlock {
  const header = validateRefcountBlock(buf, blkno, opts);
  if (header.rf_flags & OCFS2_REFCOUNT_TREE_FL) {
    return { header, list: decodeExtentList(buf, REFCOUNT_UNION_OFFSET, blkno), records: null };
  }
  return { header, list: null, records: decodeRefcountList(buf, REFCOUNT_UNION_OFFSET, blkno) };
}

export function encodeRefcountBlock(rb: RefcountBlock, buf: Buffer): Buffer {
  RefcountBlockHeader.encode(rb.header, buf, 0);
  if (rb.list) encodeExtentList(rb.list, buf, REFCOUNT_UNION_OFFSET);
  if (rb.records) encodeRefcountList(rb.records, buf, REFCOUNT_UNION_OFFSET);
  return buf;
}

/** ocfs2_get_ref_rec_low_cpos: tree keys use the low 32 bits of r_cpos. */
export function refRecLowCpos(r: RefcountRecT): number {
  return r.r_cpos % 2 ** 32;
}
