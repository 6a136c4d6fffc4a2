/**
 * Directory indexes (INDEXED_DIRS), write side, as fs/ocfs2/dir.c keeps them:
 * one dx entry (major/minor name hash, dirent block) per live name, "." and
 * ".." included (they hash to 0/0), dr_num_entries counting them.
 *
 * - A new index starts inline in the root (ocfs2_dx_dir_attach_index), or
 *   with one cluster of leaves when the inline root could not hold the
 *   entries plus one (ocfs2_new_dx_should_be_inline).
 * - A full inline root becomes an extent-tree root with one cluster of
 *   DXLEAF1 leaves at hash 0, the entries moved to the leaf their minor hash
 *   selects (ocfs2_expand_inline_dx_root).
 * - A full leaf is sorted and split at the kernel's split hash into a new
 *   cluster inserted at that hash; every leaf of the old cluster hands its
 *   entries with major >= split to the same block of the new cluster
 *   (ocfs2_dx_dir_rebalance, ocfs2_dx_dir_find_leaf_split,
 *   ocfs2_dx_dir_transfer_leaf).  dr_clusters counts the leaf clusters.
 * - The unindexed free-space list (dr_free_blk -> db_free_next, with
 *   db_free_rec_len per block) is kept by dirops.ts.
 *
 * Exports:
 *   dxHash(vol, name, unsignedChar?)                 the name hash
 *   DxTreeRoot                                       the root's dr_list as an ExtentRootAccess
 *   createDxRoot(vol, alloc, tx, dir, blk, names, freeBlk) -> root blkno
 *   dxFind(vol, rootBlk, dir, name)                  -> { blkno, entry } | undefined
 *   dxPrepareInsert(vol, alloc, tx, rootBlk, dir, hash)   room for one more entry (expand / rebalance) or ENOSPC
 *   dxInsert / dxRemove(vol, tx, rootBlk, dir, hash, direntBlk)
 *   dxNumEntries(vol, rootBlk, dir)
 *   dxTruncate(vol, alloc, tx, rootBlk, dir)         frees leaves, dx extent blocks and the root
 */
import { PosixError, Ocfs2CorruptError } from '../errors';
import {
  OCFS2_DX_FLAG_INLINE, OCFS2_DX_ROOT_SIGNATURE, OCFS2_DX_LEAF_SIGNATURE, OCFS2_EXTENT_BLOCK_SIGNATURE, hasSignature,
} from '../constants';
import { CHECK_OFFSET } from '../blockcheck';
import {
  decodeDxRoot, encodeDxRoot, newDxRootHeader, decodeDxLeaf, encodeDxLeaf, newDxLeaf, dxEntriesPerRoot, dxRootExtentRecs,
  compareDxEntries, DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET, DX_ROOT_UNION_OFFSET, DX_LEAF_LIST_OFFSET,
  DxRootBlockHeader, DxLeafHeader, type DxEntry, type DxLeaf, type DxRoot,
} from '../structs/dxdir';
import { dirBlockArea, dirBlockCheckOffset, findDirEntry, type DirEntry } from '../structs/dir';
import { emptyExtentList, EXTENT_BLOCK_LIST_OFFSET, type ExtentList } from '../structs/extent';
import { dxNameHash, dxLeafBlockFor, dxHashBlockIndex, hashDependsOnCharSign, type DxHash } from '../dirhash';
import { findLeafList } from '../extentmap';
import { ExtentTree, type ExtentRootAccess } from '../extenttree';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import type { FsAllocators } from './types';

/** OCFS2_DX_ENTRIES_MAX: dr_num_entries is a u32. */
const DX_ENTRIES_MAX = 0xffffffff;

export function dxHash(vol: Volume, name: Buffer, unsignedChar = false): DxHash {
  const h = dxNameHash(name, { dxSeed: vol.sb.dxSeed, uuidHash: vol.uuidHash }, { unsignedChar });
  return { major: h.major >>> 0, minor: h.minor >>> 0 };
}

async function readRoot(vol: Volume, rootBlk: number, dir: number): Promise<{ buf: Buffer; root: DxRoot }> {
  const buf = Buffer.from(await vol.readMetaBlock(rootBlk, DX_ROOT_CHECK_OFFSET));
  return { buf, root: decodeDxRoot(buf, rootBlk, { dirBlkno: dir }) };
}

function writeRoot(tx: Transaction, rootBlk: number, buf: Buffer, root: DxRoot): void {
  encodeDxRoot(root, buf);
  tx.writeMeta(rootBlk, buf, DX_ROOT_CHECK_OFFSET);
}

async function readLeaf(vol: Volume, blkno: number): Promise<DxLeaf> {
  return decodeDxLeaf(await vol.readMetaBlock(blkno, DX_LEAF_CHECK_OFFSET), blkno);
}

function writeLeaf(vol: Volume, tx: Transaction, leaf: DxLeaf): void {
  const buf = Buffer.alloc(vol.blockSize);
  encodeDxLeaf(leaf, buf);
  tx.writeMeta(leaf.header.dl_blkno, buf, DX_LEAF_CHECK_OFFSET);
}

/* ---- raw fast paths (hot: every lookup, insert and remove) --------------------------------- */

const R_FLAGS = DxRootBlockHeader.offsetOf('dr_flags');
const R_NUM = DxRootBlockHeader.offsetOf('dr_num_entries');
const R_FREE = DxRootBlockHeader.offsetOf('dr_free_blk');
const R_BLKNO = DxRootBlockHeader.offsetOf('dr_blkno');
const R_DIR = DxRootBlockHeader.offsetOf('dr_dir_blkno');
const L_BLKNO = DxLeafHeader.offsetOf('dl_blkno');
/** Entry list header: de_count at +4, de_num_used at +6, entries at +8. */
const EL_COUNT = 4;
const EL_USED = 6;
const EL_ENTRIES = 8;
const E_SIZE = 16;

/** The root block (shared cache buffer: copy before changing), checked like ocfs2_validate_dx_root. */
async function rootBlock(vol: Volume, rootBlk: number, dir: number): Promise<Buffer> {
  const buf = await vol.readMetaBlock(rootBlk, DX_ROOT_CHECK_OFFSET);
  if (!hasSignature(buf, 0, OCFS2_DX_ROOT_SIGNATURE)) throw new Ocfs2CorruptError(rootBlk, 'dx root signature');
  if (Number(buf.readBigUInt64LE(R_BLKNO)) !== rootBlk) throw new Ocfs2CorruptError(rootBlk, 'dx root dr_blkno does not match the block');
  if (Number(buf.readBigUInt64LE(R_DIR)) !== dir) throw new Ocfs2CorruptError(rootBlk, 'dx root dr_dir_blkno does not match the directory');
  return buf;
}

async function leafBlock(vol: Volume, blkno: number): Promise<Buffer> {
  const buf = await vol.readMetaBlock(blkno, DX_LEAF_CHECK_OFFSET);
  if (!hasSignature(buf, 0, OCFS2_DX_LEAF_SIGNATURE)) throw new Ocfs2CorruptError(blkno, 'dx leaf signature');
  if (Number(buf.readBigUInt64LE(L_BLKNO)) !== blkno) throw new Ocfs2CorruptError(blkno, 'dx leaf dl_blkno does not match the block');
  return buf;
}

const rootInline = (buf: Buffer): boolean => (buf[R_FLAGS]! & OCFS2_DX_FLAG_INLINE) !== 0;

/** The entry list's (offset, used, count), checked against the block. */
function listAt(buf: Buffer, off: number, blkno: number): { off: number; used: number; count: number } {
  const count = buf.readUInt16LE(off + EL_COUNT);
  const used = buf.readUInt16LE(off + EL_USED);
  if (used > count || off + EL_ENTRIES + count * E_SIZE > buf.length) {
    throw new Ocfs2CorruptError(blkno, 'dx entry list de_num_used/de_count out of range', `used ${used} count ${count}`);
  }
  return { off, used, count };
}

/**
 * ocfs2_dx_dir_lookup on the raw blocks: the leaf block for a hash and the
 * cpos of its cluster (at each interior level the last record whose cpos is
 * at most the major hash; in the leaf list likewise, a major past the
 * record's end taking its last cluster).
 */
async function locateRaw(vol: Volume, rootBuf: Buffer, rootBlk: number, hash: DxHash): Promise<{ leafBlk: number; leafCpos: number }> {
  let buf = rootBuf;
  let off = DX_ROOT_UNION_OFFSET;
  let where = rootBlk;
  for (let level = 0; level < 8; level++) {
    const depth = buf.readUInt16LE(off);
    const count = buf.readUInt16LE(off + 2);
    const n = buf.readUInt16LE(off + 4);
    if (n === 0 || n > count || off + 16 + n * 16 > buf.length) throw new Ocfs2CorruptError(where, 'dx tree extent list empty or out of range');
    let pick = 0;
    for (let i = 0; i < n; i++) { if (buf.readUInt32LE(off + 16 + i * 16) <= hash.major) pick = i; else break; }
    const r = off + 16 + pick * 16;
    const cpos = buf.readUInt32LE(r);
    const blkno = Number(buf.readBigUInt64LE(r + 8));
    if (depth === 0) {
      const at = dxLeafBlockFor([{ cpos, clusters: buf.readUInt16LE(r + 4), blkno }], hash, vol.clusterBits, vol.blockBits);
      if (!at) throw new Ocfs2CorruptError(where, 'dx tree has no record for hash', `major 0x${hash.major.toString(16)}`);
      return { leafBlk: at.blkno, leafCpos: at.cpos };
    }
    const eb = await vol.readMetaBlock(blkno, CHECK_OFFSET.extentBlock);
    if (!hasSignature(eb, 0, OCFS2_EXTENT_BLOCK_SIGNATURE)) throw new Ocfs2CorruptError(blkno, 'dx tree extent block signature');
    if (eb.readUInt16LE(EXTENT_BLOCK_LIST_OFFSET) !== depth - 1) throw new Ocfs2CorruptError(blkno, 'extent block depth mismatch');
    buf = eb;
    off = EXTENT_BLOCK_LIST_OFFSET;
    where = blkno;
  }
  throw new Ocfs2CorruptError(rootBlk, 'dx tree too deep');
}

/** The entry list a hash selects: the inline root's, or its leaf's. */
async function listFor(vol: Volume, rootBuf: Buffer, rootBlk: number, hash: DxHash): Promise<{ buf: Buffer; blkno: number; off: number; used: number; count: number }> {
  if (rootInline(rootBuf)) return { buf: rootBuf, blkno: rootBlk, ...listAt(rootBuf, DX_ROOT_UNION_OFFSET, rootBlk) };
  const { leafBlk } = await locateRaw(vol, rootBuf, rootBlk, hash);
  const buf = await leafBlock(vol, leafBlk);
  return { buf, blkno: leafBlk, ...listAt(buf, DX_LEAF_LIST_OFFSET, leafBlk) };
}

/** The dx root's dr_list (and dr_last_eb_blk) as the root of an extent tree. */
export class DxTreeRoot implements ExtentRootAccess {
  constructor(private readonly vol: Volume, readonly ownerBlkno: number) {}

  async read(): Promise<{ list: ExtentList; lastEbBlk: number }> {
    const root = decodeDxRoot(await this.vol.readMetaBlock(this.ownerBlkno, DX_ROOT_CHECK_OFFSET), this.ownerBlkno);
    if (root.inline) throw new Ocfs2CorruptError(this.ownerBlkno, 'inline dx root used as an extent tree');
    return { list: root.list!, lastEbBlk: root.header.dr_last_eb_blk };
  }

  async write(tx: Transaction, list: ExtentList, lastEbBlk: number): Promise<void> {
    const buf = Buffer.from(await this.vol.readMetaBlock(this.ownerBlkno, DX_ROOT_CHECK_OFFSET));
    const root = decodeDxRoot(buf, this.ownerBlkno);
    if (list.count > dxRootExtentRecs(this.vol.blockSize)) {
      throw new Ocfs2CorruptError(this.ownerBlkno, 'dx root extent list l_count too large', `${list.count}`);
    }
    // Nothing lives after the list: stale records must not linger.
    buf.fill(0, DX_ROOT_UNION_OFFSET);
    root.list = list;
    root.header.dr_last_eb_blk = lastEbBlk;
    writeRoot(tx, this.ownerBlkno, buf, root);
  }
}

function dxTree(vol: Volume, alloc: FsAllocators, rootBlk: number): ExtentTree {
  return ExtentTree.forRoot(vol, alloc, new DxTreeRoot(vol, rootBlk));
}

/** __ocfs2_dx_dir_new_cluster: claim one cluster and format each of its blocks as an empty leaf. */
async function newLeafCluster(vol: Volume, alloc: FsAllocators, tx: Transaction): Promise<{ start: number; leaves: DxLeaf[] }> {
  const run = await alloc.claimClusters(tx, 1, 1);
  const start = run.start * vol.clusterBlocks;
  const leaves: DxLeaf[] = [];
  for (let i = 0; i < vol.clusterBlocks; i++) leaves.push(newDxLeaf(vol.blockSize, start + i, vol.sb.fsGeneration));
  return { start, leaves };
}

function blockIndex(vol: Volume, minor: number): number {
  return dxHashBlockIndex(minor, vol.clusterBits, vol.blockBits);
}

/**
 * Index a directory that has just become a block directory
 * (ocfs2_expand_inline_dir + ocfs2_dx_dir_attach_index): `names` are the
 * live names of its first block `direntBlk`, in block order.  The root is
 * inline when the names plus one more fit, otherwise it gets one cluster of
 * leaves.  dr_free_blk is `freeBlk` (0 when the block has no free space).
 */
export async function createDxRoot(
  vol: Volume, alloc: FsAllocators, tx: Transaction, dir: number, direntBlk: number, names: Buffer[], freeBlk: number,
): Promise<number> {
  const cap = dxEntriesPerRoot(vol.blockSize);
  const inline = names.length < cap;
  const entries: DxEntry[] = names.map((n) => {
    const h = dxHash(vol, n);
    return { dx_major_hash: h.major, dx_minor_hash: h.minor, dx_dirent_blk: direntBlk };
  });
  // The kernel claims the leaf cluster before the root block.
  const cluster = inline ? undefined : await newLeafCluster(vol, alloc, tx);
  const sa = await alloc.claimMetaBlock(tx);
  const header = newDxRootHeader({
    dr_blkno: sa.blkno, dr_dir_blkno: dir, dr_suballoc_slot: sa.suballocSlot, dr_suballoc_bit: sa.suballocBit,
    dr_suballoc_loc: sa.suballocLoc, dr_fs_generation: vol.sb.fsGeneration >>> 0,
    dr_flags: inline ? OCFS2_DX_FLAG_INLINE : 0, dr_num_entries: entries.length, dr_free_blk: freeBlk,
  });
  const buf = Buffer.alloc(vol.blockSize);
  if (inline) {
    encodeDxRoot({ header, inline: true, entries: { count: cap, entries, reserved: 0 } }, buf);
  } else {
    for (const e of entries) cluster!.leaves[blockIndex(vol, e.dx_minor_hash)]!.list.entries.push(e);
    for (const l of cluster!.leaves) writeLeaf(vol, tx, l);
    const list = emptyExtentList(dxRootExtentRecs(vol.blockSize));
    list.recs = [{ cpos: 0, clusters: 1, blkno: cluster!.start, flags: 0, reserved1: 0 }];
    list.nextFreeRec = 1;
    header.dr_clusters = 1;
    encodeDxRoot({ header, inline: false, list }, buf);
  }
  tx.writeMeta(sa.blkno, buf, DX_ROOT_CHECK_OFFSET);
  return sa.blkno;
}

/** The entry list (and leaf) a hash belongs to. */
async function locate(vol: Volume, root: DxRoot, rootBlk: number, hash: DxHash): Promise<{ leafBlk: number; leafCpos: number }> {
  const recs = await findLeafList(vol, root.list!, rootBlk, hash.major, { hashed: true });
  const at = dxLeafBlockFor(recs, hash, vol.clusterBits, vol.blockBits);
  if (!at) throw new Ocfs2CorruptError(rootBlk, 'dx tree has no record for hash', `major 0x${hash.major.toString(16)}`);
  return { leafBlk: at.blkno, leafCpos: at.cpos };
}

/**
 * Look a name up through the index (ocfs2_dx_dir_search): the entries with
 * its hash name candidate dirent blocks.  Names with bytes >= 0x80 are also
 * tried with the unsigned-char hash (kernels built with -funsigned-char).
 */
export async function dxFind(vol: Volume, rootBlk: number, dir: number, name: Buffer): Promise<{ blkno: number; entry: DirEntry } | undefined> {
  const rootBuf = await rootBlock(vol, rootBlk, dir);
  const variants = hashDependsOnCharSign(name) ? [false, true] : [false];
  for (const unsignedChar of variants) {
    const hash = dxHash(vol, name, unsignedChar);
    const l = await listFor(vol, rootBuf, rootBlk, hash);
    const tried = new Set<number>();
    for (let i = 0; i < l.used; i++) {
      const e = l.off + EL_ENTRIES + i * E_SIZE;
      if (l.buf.readUInt32LE(e) !== hash.major || l.buf.readUInt32LE(e + 4) !== hash.minor) continue;
      const blk = Number(l.buf.readBigUInt64LE(e + 8));
      if (tried.has(blk)) continue;
      tried.add(blk);
      const db = await vol.readMetaBlock(blk, dirBlockCheckOffset(vol.blockSize));
      const de = findDirEntry(db, dirBlockArea(blk, vol.blockSize, true), name);
      if (de) return { blkno: blk, entry: de };
    }
  }
  return undefined;
}

export async function dxNumEntries(vol: Volume, rootBlk: number, dir: number): Promise<number> {
  return (await rootBlock(vol, rootBlk, dir)).readUInt32LE(R_NUM);
}

/** ocfs2_expand_inline_dx_root: the inline entries move to one cluster of leaves at hash 0. */
async function expandInlineRoot(vol: Volume, alloc: FsAllocators, tx: Transaction, rootBlk: number, dir: number): Promise<void> {
  const { start, leaves } = await newLeafCluster(vol, alloc, tx);
  const { buf, root } = await readRoot(vol, rootBlk, dir);
  for (const e of root.entries!.entries) leaves[blockIndex(vol, e.dx_minor_hash)]!.list.entries.push(e);
  for (const l of leaves) writeLeaf(vol, tx, l);
  const list = emptyExtentList(dxRootExtentRecs(vol.blockSize));
  list.recs = [{ cpos: 0, clusters: 1, blkno: start, flags: 0, reserved1: 0 }];
  list.nextFreeRec = 1;
  buf.fill(0, DX_ROOT_UNION_OFFSET);
  root.inline = false;
  root.entries = undefined;
  root.list = list;
  root.header.dr_flags &= ~OCFS2_DX_FLAG_INLINE;
  root.header.dr_clusters += 1;
  writeRoot(tx, rootBlk, buf, root);
}

/**
 * ocfs2_dx_dir_find_leaf_split: where to split a full, sorted leaf of the
 * cluster at `leafCpos` for an insert with major hash `insertMajor`.
 * Returns undefined when no split can make room (the kernel's ENOSPC).
 */
export function findLeafSplit(sorted: readonly DxEntry[], leafCpos: number, insertMajor: number): number | undefined {
  const first = sorted[0]!.dx_major_hash;
  if (sorted.every((e) => e.dx_major_hash === first)) {
    if (first === insertMajor) return undefined;
    if (first === leafCpos) return leafCpos + 1;
    if (first > insertMajor) return first;
    return insertMajor;
  }
  // From the median on, the first major above the cluster's start.
  for (let i = Math.floor(sorted.length / 2); i < sorted.length; i++) {
    if (sorted[i]!.dx_major_hash > leafCpos) return sorted[i]!.dx_major_hash;
  }
  return undefined;
}

/** ocfs2_dx_dir_rebalance: split the full leaf `leafBlk` (cluster at hash `leafCpos`) into a new cluster. */
async function rebalance(
  vol: Volume, alloc: FsAllocators, tx: Transaction, rootBlk: number, dir: number, leafBlk: number, leafCpos: number, insertMajor: number,
): Promise<void> {
  const { root } = await readRoot(vol, rootBlk, dir);
  if (root.header.dr_clusters >= 0xffffffff) throw new PosixError('ENOSPC', 'directory index has the maximum number of clusters');
  const full = await readLeaf(vol, leafBlk);
  if (full.list.entries.length < full.list.count) throw new Ocfs2CorruptError(leafBlk, 'dx leaf to rebalance is not full');
  // The full leaf is sorted in place (it changes anyway); the others keep their order.
  full.list.entries.sort(compareDxEntries);
  const split = findLeafSplit(full.list.entries, leafCpos, insertMajor);
  if (split === undefined) throw new PosixError('ENOSPC', 'dx leaf full of one hash');
  const origStart = leafBlk - (leafBlk % vol.clusterBlocks);
  const { start, leaves: fresh } = await newLeafCluster(vol, alloc, tx);
  await dxTree(vol, alloc, rootBlk).insert(tx, { cpos: split, clusters: 1, blkno: start, flags: 0 });
  {
    const { buf, root: r } = await readRoot(vol, rootBlk, dir);
    r.header.dr_clusters += 1;
    writeRoot(tx, rootBlk, buf, r);
  }
  for (let i = 0; i < vol.clusterBlocks; i++) {
    const orig = origStart + i === leafBlk ? full : await readLeaf(vol, origStart + i);
    const keep: DxEntry[] = [];
    for (const e of orig.list.entries) (e.dx_major_hash >= split ? fresh[i]!.list.entries : keep).push(e);
    orig.list.entries = keep;
    writeLeaf(vol, tx, orig);
    writeLeaf(vol, tx, fresh[i]!);
  }
}

/**
 * ocfs2_prepare_dx_dir_for_insert, index part: make sure the entry list the
 * hash selects has room (expanding an inline root, splitting a full leaf
 * once), or throw ENOSPC as the kernel does.
 */
export async function dxPrepareInsert(vol: Volume, alloc: FsAllocators, tx: Transaction, rootBlk: number, dir: number, hash: DxHash): Promise<void> {
  {
    const rb = await rootBlock(vol, rootBlk, dir);
    if (rb.readUInt32LE(R_NUM) < DX_ENTRIES_MAX) {
      const l = await listFor(vol, rb, rootBlk, hash);
      if (l.used < l.count) return;
    }
  }
  let { root } = await readRoot(vol, rootBlk, dir);
  if (root.header.dr_num_entries >= DX_ENTRIES_MAX) throw new PosixError('ENOSPC', 'directory index has the maximum number of entries');
  if (root.inline) {
    if (root.entries!.entries.length < root.entries!.count) return;
    await expandInlineRoot(vol, alloc, tx, rootBlk, dir);
    ({ root } = await readRoot(vol, rootBlk, dir));
  }
  for (let pass = 0; ; pass++) {
    const { leafBlk, leafCpos } = await locate(vol, root, rootBlk, hash);
    const leaf = await readLeaf(vol, leafBlk);
    if (leaf.list.entries.length < leaf.list.count) return;
    if (pass > 0) throw new PosixError('ENOSPC', 'dx leaf still full after a split');
    await rebalance(vol, alloc, tx, rootBlk, dir, leafBlk, leafCpos, hash.major);
    ({ root } = await readRoot(vol, rootBlk, dir));
  }
}

/** ocfs2_dx_dir_insert: append the entry to its list; dr_num_entries + 1.  dxPrepareInsert made room. */
export async function dxInsert(vol: Volume, tx: Transaction, rootBlk: number, dir: number, hash: DxHash, direntBlk: number): Promise<void> {
  const root = Buffer.from(await rootBlock(vol, rootBlk, dir));
  const l = await listFor(vol, root, rootBlk, hash);
  if (l.used >= l.count) throw new PosixError('ENOSPC', 'dx entry list full');
  const buf = l.blkno === rootBlk ? root : Buffer.from(l.buf);
  const e = l.off + EL_ENTRIES + l.used * E_SIZE;
  buf.writeUInt32LE(hash.major, e);
  buf.writeUInt32LE(hash.minor, e + 4);
  buf.writeBigUInt64LE(BigInt(direntBlk), e + 8);
  buf.writeUInt16LE(l.used + 1, l.off + EL_USED);
  if (buf !== root) tx.writeMeta(l.blkno, buf, DX_LEAF_CHECK_OFFSET);
  root.writeUInt32LE((root.readUInt32LE(R_NUM) + 1) >>> 0, R_NUM);
  tx.writeMeta(rootBlk, root, DX_ROOT_CHECK_OFFSET);
}

/** The dx part of ocfs2_delete_entry_dx: drop the entry (hash, dirent block); dr_num_entries - 1. */
export async function dxRemove(vol: Volume, tx: Transaction, rootBlk: number, dir: number, name: Buffer, direntBlk: number): Promise<void> {
  const root = Buffer.from(await rootBlock(vol, rootBlk, dir));
  const variants = hashDependsOnCharSign(name) ? [false, true] : [false];
  for (const unsignedChar of variants) {
    const hash = dxHash(vol, name, unsignedChar);
    const l = await listFor(vol, root, rootBlk, hash);
    let at = -1;
    for (let i = 0; i < l.used && at < 0; i++) {
      const e = l.off + EL_ENTRIES + i * E_SIZE;
      if (l.buf.readUInt32LE(e) === hash.major && l.buf.readUInt32LE(e + 4) === hash.minor
          && Number(l.buf.readBigUInt64LE(e + 8)) === direntBlk) at = i;
    }
    if (at < 0) continue;
    // ocfs2_dx_list_remove_entry: the rest moves down, the freed slot is zeroed.
    const buf = l.blkno === rootBlk ? root : Buffer.from(l.buf);
    const base = l.off + EL_ENTRIES;
    buf.copy(buf, base + at * E_SIZE, base + (at + 1) * E_SIZE, base + l.used * E_SIZE);
    buf.fill(0, base + (l.used - 1) * E_SIZE, base + l.used * E_SIZE);
    buf.writeUInt16LE(l.used - 1, l.off + EL_USED);
    if (buf !== root) tx.writeMeta(l.blkno, buf, DX_LEAF_CHECK_OFFSET);
    root.writeUInt32LE(Math.max(0, root.readUInt32LE(R_NUM) - 1), R_NUM);
    tx.writeMeta(rootBlk, root, DX_ROOT_CHECK_OFFSET);
    return;
  }
  throw new Ocfs2CorruptError(rootBlk, 'dx entry for a name is missing', `dirent block ${direntBlk}`);
}

/** The root's free-list head (dr_free_blk). */
export async function dxFreeHead(vol: Volume, rootBlk: number, dir: number): Promise<number> {
  return Number((await rootBlock(vol, rootBlk, dir)).readBigUInt64LE(R_FREE));
}

export async function dxSetFreeHead(vol: Volume, tx: Transaction, rootBlk: number, dir: number, blk: number): Promise<void> {
  const buf = Buffer.from(await rootBlock(vol, rootBlk, dir));
  buf.writeBigUInt64LE(BigInt(blk), R_FREE);
  tx.writeMeta(rootBlk, buf, DX_ROOT_CHECK_OFFSET);
}

/**
 * ocfs2_dx_dir_truncate + ocfs2_dx_dir_remove_index: the leaf clusters are
 * freed, with the extent blocks of the dx tree and the root itself.  The
 * caller clears i_dx_root and INDEXED_DIR_FL in the inode.
 */
export async function dxTruncate(vol: Volume, alloc: FsAllocators, tx: Transaction, rootBlk: number, dir: number): Promise<void> {
  const { root } = await readRoot(vol, rootBlk, dir);
  if (!root.inline) {
    const removed = await dxTree(vol, alloc, rootBlk).remove(tx, 0, 2 ** 32);
    for (const r of removed) {
      for (let b = 0; b < r.clusters * vol.clusterBlocks; b++) tx.forget(r.blkno + b);
      await alloc.freeClusters(tx, { start: r.blkno / vol.clusterBlocks, count: r.clusters });
    }
  }
  const { root: r } = await readRoot(vol, rootBlk, dir);
  await alloc.freeMetaBlock(tx, {
    blkno: rootBlk, suballocSlot: r.header.dr_suballoc_slot, suballocBit: r.header.dr_suballoc_bit, suballocLoc: r.header.dr_suballoc_loc,
  });
}
