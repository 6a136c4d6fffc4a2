/**
 * Keeping a directory index (dx root + leaves) in step with dirent changes:
 * one dx entry (major/minor name hash, dirent block) per live name, "." and
 * ".." included (they hash to 0/0), dr_num_entries counting them.  New
 * indexes start inline in the root (as ocfs2_expand_inline_dir makes them);
 * existing leaf trees get entries appended to the leaf the hash selects.
 * Not done yet: converting a full inline root to leaves and splitting full
 * leaves (ocfs2_expand_inline_dx_root / ocfs2_dx_dir_rebalance): ENOSPC.
 */
import { PosixError, Ocfs2CorruptError } from '../errors';
import { OCFS2_DX_FLAG_INLINE } from '../constants';
import {
  decodeDxRoot, encodeDxRoot, newDxRootHeader, decodeDxLeaf, encodeDxLeaf, dxEntriesPerRoot,
  DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET, type DxEntry,
} from '../structs/dxdir';
import { dxNameHash, dxLeafBlockFor, type DxHash } from '../dirhash';
import { findLeafList } from '../extentmap';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import type { FsAllocators } from './types';

export function dxHash(vol: Volume, name: Buffer): DxHash {
  return dxNameHash(name, { dxSeed: vol.sb.dxSeed, uuidHash: vol.uuidHash });
}

/** Create an inline dx root for directory `dir` indexing `names` (all in block `direntBlk`). */
export async function createInlineDxRoot(
  vol: Volume, alloc: FsAllocators, tx: Transaction, dir: number, direntBlk: number, names: Buffer[],
): Promise<number> {
  const cap = dxEntriesPerRoot(vol.blockSize);
  if (names.length >= cap) throw new PosixError('ENOSPC', 'directory index: too many entries for an inline dx root');
  const sa = await alloc.claimMetaBlock(tx);
  const buf = Buffer.alloc(vol.blockSize);
  const entries: DxEntry[] = names.map((n) => {
    const h = dxHash(vol, n);
    return { dx_major_hash: h.major >>> 0, dx_minor_hash: h.minor >>> 0, dx_dirent_blk: direntBlk };
  });
  encodeDxRoot({
    header: newDxRootHeader({
      dr_blkno: sa.blkno, dr_dir_blkno: dir, dr_suballoc_slot: sa.suballocSlot, dr_suballoc_bit: sa.suballocBit,
      dr_suballoc_loc: sa.suballocLoc, dr_fs_generation: vol.sb.fsGeneration >>> 0, dr_flags: OCFS2_DX_FLAG_INLINE,
      dr_num_entries: entries.length,
    }),
    inline: true,
    entries: { count: cap, entries, reserved: 0 },
  }, buf);
  tx.writeMeta(sa.blkno, buf, DX_ROOT_CHECK_OFFSET);
  return sa.blkno;
}

async function where(vol: Volume, rootBlk: number, dir: number, hash: DxHash) {
  const rbuf = Buffer.from(await vol.readMetaBlock(rootBlk, DX_ROOT_CHECK_OFFSET));
  const root = decodeDxRoot(rbuf, rootBlk, { dirBlkno: dir });
  if (root.inline) return { rbuf, root, leafBlk: 0, lbuf: undefined };
  const recs = await findLeafList(vol, root.list!, rootBlk, hash.major >>> 0);
  const at = dxLeafBlockFor(recs, hash, vol.clusterBits, vol.blockBits);
  if (!at) throw new Ocfs2CorruptError(rootBlk, 'dx tree has no record for hash');
  const lbuf = Buffer.from(await vol.readMetaBlock(at.blkno, DX_LEAF_CHECK_OFFSET));
  return { rbuf, root, leafBlk: at.blkno, lbuf };
}

/** Can an entry for `name` be added (checked before any change is made)? */
export async function dxHasRoom(vol: Volume, rootBlk: number, dir: number, name: Buffer): Promise<boolean> {
  const w = await where(vol, rootBlk, dir, dxHash(vol, name));
  if (w.root.inline) return w.root.entries!.entries.length < w.root.entries!.count;
  const leaf = decodeDxLeaf(w.lbuf!, w.leafBlk);
  return leaf.list.entries.length < leaf.list.count;
}

export async function dxInsert(vol: Volume, tx: Transaction, rootBlk: number, dir: number, name: Buffer, direntBlk: number): Promise<void> {
  const hash = dxHash(vol, name);
  const w = await where(vol, rootBlk, dir, hash);
  const e: DxEntry = { dx_major_hash: hash.major >>> 0, dx_minor_hash: hash.minor >>> 0, dx_dirent_blk: direntBlk };
  if (w.root.inline) {
    const l = w.root.entries!;
    if (l.entries.length >= l.count) throw new PosixError('ENOSPC', 'directory index full (inline dx root expansion not implemented)');
    l.entries.push(e);
  } else {
    const leaf = decodeDxLeaf(w.lbuf!, w.leafBlk);
    if (leaf.list.entries.length >= leaf.list.count) throw new PosixError('ENOSPC', 'dx leaf full (leaf split not implemented)');
    leaf.list.entries.push(e);
    encodeDxLeaf(leaf, w.lbuf!);
    tx.writeMeta(w.leafBlk, w.lbuf!, DX_LEAF_CHECK_OFFSET);
  }
  w.root.header.dr_num_entries += 1;
  encodeDxRoot(w.root, w.rbuf);
  tx.writeMeta(rootBlk, w.rbuf, DX_ROOT_CHECK_OFFSET);
}

export async function dxRemove(vol: Volume, tx: Transaction, rootBlk: number, dir: number, name: Buffer, direntBlk: number): Promise<void> {
  const hash = dxHash(vol, name);
  const w = await where(vol, rootBlk, dir, hash);
  const match = (x: DxEntry) => x.dx_major_hash === (hash.major >>> 0) && x.dx_minor_hash === (hash.minor >>> 0) && x.dx_dirent_blk === direntBlk;
  if (w.root.inline) {
    const i = w.root.entries!.entries.findIndex(match);
    if (i < 0) throw new Ocfs2CorruptError(rootBlk, 'dx entry for a name is missing');
    w.root.entries!.entries.splice(i, 1);
  } else {
    const leaf = decodeDxLeaf(w.lbuf!, w.leafBlk);
    const i = leaf.list.entries.findIndex(match);
    if (i < 0) throw new Ocfs2CorruptError(w.leafBlk, 'dx entry for a name is missing');
    leaf.list.entries.splice(i, 1);
    encodeDxLeaf(leaf, w.lbuf!);
    tx.writeMeta(w.leafBlk, w.lbuf!, DX_LEAF_CHECK_OFFSET);
  }
  w.root.header.dr_num_entries = Math.max(0, w.root.header.dr_num_entries - 1);
  encodeDxRoot(w.root, w.rbuf);
  tx.writeMeta(rootBlk, w.rbuf, DX_ROOT_CHECK_OFFSET);
}
