/**
 * Extent-tree lookups (read side): from the root list in an inode (or a dx
 * root, xattr value root, xattr tree root) down through EXBLK01 blocks to
 * the leaf records.  Interior records key subtrees by their first cpos; a
 * leaf record maps [e_cpos, e_cpos + e_leaf_clusters) to clusters starting at
 * physical block e_blkno (ocfs2_fs.h).
 */
import { Ocfs2CorruptError } from './errors';
import { interiorRecordRange, validateExtentRecords, type ExtentList, type ExtentRec } from './structs/extent';
import type { Volume } from './volume';

/** A leaf extent: logical clusters [cpos, cpos+clusters) at physical block blkno. */
export interface LeafExtent {
  cpos: number;
  clusters: number;
  blkno: number;
  flags: number;
}

/** The kernel limits trees to depth 4 (OCFS2_MAX_PATH_DEPTH 5 incl. the root). */
const MAX_DEPTH = 5;

/** Trees whose e_cpos are hashes (dx trees, xattr trees): records sorted, but not disjoint ranges. */
export interface TreeKind { hashed?: boolean }

/** validateExtentRecords for a list read from block `holder`, inside `range` of its parent. */
function checkList(vol: Volume, list: ExtentList, holder: number, kind: TreeKind, range?: { start: number; end: number }): void {
  validateExtentRecords(list, holder, { blockCount: vol.dev.blockCount, clusterBlocks: vol.clusterBlocks, range, disjoint: !kind.hashed });
}

function toLeaf(r: ExtentRec): LeafExtent {
  return { cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags };
}

/**
 * The records of the leaf list that covers `cpos` (the leaf a lookup for
 * `cpos` reaches, as ocfs2_find_leaf does: at each level the last record
 * whose cpos <= the target; the first record when the target lies before
 * all of them).
 */
export async function findLeafList(vol: Volume, root: ExtentList, ownerBlkno: number, cpos: number, kind: TreeKind = {}): Promise<ExtentRec[]> {
  let list = root;
  let where = ownerBlkno;
  checkList(vol, list, where, kind);
  if (list.treeDepth > MAX_DEPTH) throw new Ocfs2CorruptError(where, 'extent list l_tree_depth too large', `depth ${list.treeDepth}`);
  for (let level = 0; list.treeDepth > 0; level++) {
    if (level >= MAX_DEPTH) throw new Ocfs2CorruptError(where, 'extent tree too deep', `depth ${root.treeDepth}`);
    if (list.recs.length === 0) throw new Ocfs2CorruptError(where, 'empty interior extent list');
    let pick = 0;
    list.recs.forEach((r, i) => { if (r.cpos <= cpos) pick = i; });
    const blk = list.recs[pick]!.blkno;
    const eb = await vol.readExtentBlock(blk);
    if (eb.list.treeDepth !== list.treeDepth - 1) {
      throw new Ocfs2CorruptError(blk, 'extent block depth mismatch',
        `l_tree_depth ${eb.list.treeDepth}, parent depth ${list.treeDepth}`);
    }
    checkList(vol, eb.list, blk, kind, interiorRecordRange(list, pick));
    list = eb.list;
    where = blk;
  }
  return list.recs;
}

/**
 * The leaf record containing `cpos`, or, when `cpos` is in a hole, the next
 * record after it (so the caller knows where the hole ends), or undefined
 * past the last record.
 */
export async function lookupExtent(
  vol: Volume, root: ExtentList, ownerBlkno: number, cpos: number,
): Promise<{ extent?: LeafExtent; next?: LeafExtent }> {
  const recs = await findLeafList(vol, root, ownerBlkno, cpos);
  // An empty leaf record (clusters 0) maps nothing.
  for (const r of recs) {
    if (r.clusters === 0 || r.cpos + r.clusters <= cpos) continue;
    if (r.cpos <= cpos) return { extent: toLeaf(r) };
    return { next: toLeaf(r) };
  }
  // A hole at the end of this leaf: the next leaf may start later.
  if (root.treeDepth > 0) {
    const all = await allLeafExtents(vol, root, ownerBlkno);
    const next = all.find((r) => r.cpos > cpos);
    return next ? { next } : {};
  }
  return {};
}

/** Every leaf record of the tree, in logical order. */
export async function allLeafExtents(vol: Volume, root: ExtentList, ownerBlkno: number, kind: TreeKind = {}): Promise<LeafExtent[]> {
  const out: LeafExtent[] = [];
  const walk = async (list: ExtentList, where: number, level: number, range?: { start: number; end: number }): Promise<void> => {
    if (level > MAX_DEPTH) throw new Ocfs2CorruptError(where, 'extent tree too deep');
    checkList(vol, list, where, kind, range);
    if (list.treeDepth === 0) { for (const r of list.recs) if (r.clusters > 0) out.push(toLeaf(r)); return; }
    for (let i = 0; i < list.recs.length; i++) {
      const r = list.recs[i]!;
      const eb = await vol.readExtentBlock(r.blkno);
      if (eb.list.treeDepth !== list.treeDepth - 1) {
        throw new Ocfs2CorruptError(r.blkno, 'extent block depth mismatch',
          `l_tree_depth ${eb.list.treeDepth}, parent depth ${list.treeDepth}`);
      }
      await walk(eb.list, r.blkno, level + 1, interiorRecordRange(list, i));
    }
  };
  await walk(root, ownerBlkno, 0);
  return out;
}

/** Extent flag: allocated but never written, reads as zeros (OCFS2_EXT_UNWRITTEN). */
export const EXT_UNWRITTEN = 0x1;

/**
 * Read `length` bytes at byte `offset` of the data mapped by an extent tree
 * (a file, a slow symlink, a directory, an xattr value) into `out` at
 * `outOff`.  Holes and unwritten extents read as zeros (filled in place, no
 * allocation).  The caller clamps to the object's size.
 */
export async function readMappedInto(
  vol: Volume, root: ExtentList, ownerBlkno: number, offset: number, length: number, out: Buffer, outOff = 0,
): Promise<void> {
  const cs = vol.clusterSize;
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const cpos = Math.floor(pos / cs);
    const { extent, next } = await lookupExtent(vol, root, ownerBlkno, cpos);
    if (!extent) {
      // A hole up to the next extent (or to the end).
      const holeEnd = next ? Math.max(pos + 1, Math.min(end, next.cpos * cs)) : end;
      out.fill(0, outOff + (pos - offset), outOff + (holeEnd - offset));
      pos = holeEnd;
      continue;
    }
    const extEnd = Math.min(end, (extent.cpos + extent.clusters) * cs);
    if (extent.flags & EXT_UNWRITTEN) {
      out.fill(0, outOff + (pos - offset), outOff + (extEnd - offset));
    } else {
      const physByte = extent.blkno * vol.blockSize + (pos - extent.cpos * cs);
      const lastBlock = extent.blkno + Math.ceil((extEnd - extent.cpos * cs) / vol.blockSize);
      if (lastBlock > vol.dev.blockCount) {
        throw new Ocfs2CorruptError(ownerBlkno, 'extent maps beyond the end of the volume', `e_blkno ${extent.blkno}`);
      }
      await vol.dev.readInto(physByte, out, outOff + (pos - offset), extEnd - pos);
    }
    pos = extEnd;
  }
}

/** readMappedInto a fresh buffer. */
export async function readMapped(
  vol: Volume, root: ExtentList, ownerBlkno: number, offset: number, length: number,
): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  await readMappedInto(vol, root, ownerBlkno, offset, length, out);
  return out;
}
