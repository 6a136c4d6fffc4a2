/**
 * Extent trees, write side (fs/ocfs2/alloc.c semantics, our own algorithm).
 *
 * Shape kept (what the kernel's lookups and fsck.ocfs2 rely on):
 * - all leaves at the same depth; leaf records sorted, non-overlapping,
 *   e_leaf_clusters <= 0xFFFF; holes allowed (SPARSE_ALLOC);
 * - interior records tile the logical space: rec[0] of the root starts at
 *   cpos 0 (ocfs2_shift_tree_depth), rec[i].e_int_clusters =
 *   rec[i+1].e_cpos - rec[i].e_cpos, and the last record of a list reaches
 *   the end of its parent's range (on the rightmost path: the end of the last
 *   leaf record, ocfs2_sum_rightmost_rec);
 * - i_last_eb_blk (or the root's equivalent) names the rightmost leaf, and
 *   leaves are chained left to right by h_next_leaf_blk;
 * - extent blocks come from extent_alloc:NNNN (h_suballoc_slot/bit/loc).
 *
 * Operations: insert merges with contiguous neighbours in the same leaf,
 * appends a new rightmost branch for records past the end (as
 * ocfs2_add_branch: sequential writes leave full leaves behind), splits a
 * full leaf whose parent has room, and shifts the depth when the root is
 * full; anything else (and removals that empty leaves) rebuilds the tree
 * from its leaf records, reusing its extent blocks.  remove/setFlags cut
 * records at the range edges.  The tree never touches i_clusters/i_size:
 * that is the caller's (ocfs2_et_update_clusters is done by the file code).
 *
 * The root block is written by these operations: callers re-read it (the
 * pinned copy) before changing other fields of it in the same transaction.
 */
import { CHECK_OFFSET } from './blockcheck';
import { OCFS2_EXTENT_BLOCK_SIGNATURE, OCFS2_INLINE_DATA_FL } from './constants';
import { Ocfs2CorruptError, PosixError } from './errors';
import {
  DinodeHeader, inlineXattrSize, inodeExtentList, writeInodeExtentList, DINODE_ID2_OFFSET,
} from './structs/dinode';
import {
  EXTENT_BLOCK_LIST_OFFSET, EXTENT_REC_SIZE, ExtentBlockHeader, ExtentListHeader, encodeExtentList,
  extentRecsFitting, extentRecsPerExtentBlock, type ExtentBlockHeaderT, type ExtentList, type ExtentRec,
} from './structs/extent';
import type { Transaction } from './txn';
import type { Volume } from './volume';
import type { SubAlloc } from './alloc';

/** A leaf extent: logical clusters [cpos, cpos+clusters) at physical block blkno. */
export interface LeafRec {
  cpos: number;
  clusters: number;
  blkno: number;
  flags: number;
}

/** What the tree needs from the allocators (Allocators implements it). */
export interface MetaBlockSource {
  claimMetaBlock(tx: Transaction): Promise<SubAlloc>;
  freeMetaBlock(tx: Transaction, a: SubAlloc): Promise<void>;
}

/**
 * Where a tree's root lives: an inode's id2 list, a dx root's list, an xattr
 * value root...  `write` stores the list and the last-leaf pointer in the
 * owning block (re-reading it first) with that block's check offset.
 */
export interface ExtentRootAccess {
  readonly ownerBlkno: number;
  read(): Promise<{ list: ExtentList; lastEbBlk: number }>;
  write(tx: Transaction, list: ExtentList, lastEbBlk: number): Promise<void>;
}

/** The largest e_leaf_clusters. */
export const MAX_LEAF_CLUSTERS = 0xffff;
const MAX_DEPTH = 4;

/** The inode's id2.i_list, with capacity reduced by an inline xattr area. */
export class InodeExtentRoot implements ExtentRootAccess {
  constructor(private readonly vol: Volume, readonly ownerBlkno: number) {}

  async read(): Promise<{ list: ExtentList; lastEbBlk: number }> {
    const { buf, inode } = await this.vol.readInode(this.ownerBlkno);
    if (inode.dynFeatures & OCFS2_INLINE_DATA_FL) {
      throw new PosixError('EINVAL', `inode ${this.ownerBlkno} has inline data, not an extent list`);
    }
    return { list: inodeExtentList(buf, this.ownerBlkno), lastEbBlk: inode.lastEbBlk };
  }

  async write(tx: Transaction, list: ExtentList, lastEbBlk: number): Promise<void> {
    const { buf: shared } = await this.vol.readInode(this.ownerBlkno);
    const buf = Buffer.from(shared);
    const h = DinodeHeader.decode(buf, 0);
    const end = buf.length - inlineXattrSize(h);
    const fit = extentRecsFitting(DINODE_ID2_OFFSET, end);
    if (list.count > fit) throw new Ocfs2CorruptError(this.ownerBlkno, 'extent list l_count beyond the inode', `${list.count} > ${fit}`);
    clearRecords(buf, DINODE_ID2_OFFSET, list.count);
    writeInodeExtentList(buf, list);
    buf.writeBigUInt64LE(BigInt(lastEbBlk), DinodeHeader.offsetOf('i_last_eb_blk'));
    tx.writeMeta(this.ownerBlkno, buf, CHECK_OFFSET.dinode);
  }
}

function clearRecords(buf: Buffer, listOff: number, count: number): void {
  const at = listOff + ExtentListHeader.size;
  buf.fill(0, at, Math.min(buf.length, at + count * EXTENT_REC_SIZE));
}

interface Node {
  /** 0 for the root. */
  blkno: number;
  list: ExtentList;
  header: ExtentBlockHeaderT | null;
}

interface Path {
  nodes: Node[];
  /** idx[k]: the record of nodes[k] followed to nodes[k+1]. */
  idx: number[];
  /** Logical range of each node: [lo[k], hi[k]) (hi of the root: Infinity). */
  lo: number[];
  hi: number[];
  rightmost: boolean;
  lastEbBlk: number;
}

function toRec(r: LeafRec): ExtentRec {
  return { cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags, reserved1: 0 };
}

function leafOf(r: ExtentRec): LeafRec {
  return { cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags };
}

export class ExtentTree {
  private readonly cb: number;

  constructor(readonly vol: Volume, readonly alloc: MetaBlockSource, readonly root: ExtentRootAccess) {
    this.cb = vol.clusterBlocks;
  }

  static forInode(vol: Volume, alloc: MetaBlockSource, inodeBlkno: number): ExtentTree {
    return new ExtentTree(vol, alloc, new InodeExtentRoot(vol, inodeBlkno));
  }

  static forRoot(vol: Volume, alloc: MetaBlockSource, root: ExtentRootAccess): ExtentTree {
    return new ExtentTree(vol, alloc, root);
  }

  /* ---- reading ------------------------------------------------------------------------------ */

  private async readEb(blkno: number, depth: number): Promise<Node> {
    const eb = await this.vol.readExtentBlock(blkno);
    if (eb.list.treeDepth !== depth) {
      throw new Ocfs2CorruptError(blkno, 'extent block depth mismatch', `l_tree_depth ${eb.list.treeDepth}, expected ${depth}`);
    }
    return { blkno, list: eb.list, header: eb.header };
  }

  private async findPath(cpos: number): Promise<Path> {
    const { list, lastEbBlk } = await this.root.read();
    if (list.treeDepth > MAX_DEPTH) throw new Ocfs2CorruptError(this.root.ownerBlkno, 'extent tree too deep', `${list.treeDepth}`);
    const nodes: Node[] = [{ blkno: 0, list, header: null }];
    const idx: number[] = [];
    const lo = [0];
    const hi = [Infinity];
    let rightmost = true;
    for (let k = 0; nodes[k]!.list.treeDepth > 0; k++) {
      const n = nodes[k]!;
      if (n.list.recs.length === 0) throw new Ocfs2CorruptError(n.blkno || this.root.ownerBlkno, 'empty interior extent list');
      let i = 0;
      for (let j = 0; j < n.list.recs.length; j++) if (n.list.recs[j]!.cpos <= cpos) i = j;
      idx.push(i);
      const r = n.list.recs[i]!;
      const next = n.list.recs[i + 1];
      lo.push(r.cpos);
      hi.push(next ? next.cpos : hi[k]!);
      if (next) rightmost = false;
      nodes.push(await this.readEb(r.blkno, n.list.treeDepth - 1));
    }
    return { nodes, idx, lo, hi, rightmost, lastEbBlk };
  }

  /** Every leaf record and every extent block of the tree. */
  private async walk(): Promise<{ recs: LeafRec[]; blocks: Node[]; rootList: ExtentList }> {
    const { list } = await this.root.read();
    const recs: LeafRec[] = [];
    const blocks: Node[] = [];
    const visit = async (l: ExtentList, level: number): Promise<void> => {
      if (level > MAX_DEPTH) throw new Ocfs2CorruptError(this.root.ownerBlkno, 'extent tree too deep');
      if (l.treeDepth === 0) {
        for (const r of l.recs) if (r.clusters > 0) recs.push(leafOf(r));
        return;
      }
      for (const r of l.recs) {
        const n = await this.readEb(r.blkno, l.treeDepth - 1);
        blocks.push(n);
        await visit(n.list, level + 1);
      }
    };
    await visit(list, 0);
    return { recs, blocks, rootList: list };
  }

  /** The leaf records, in logical order. */
  async records(): Promise<LeafRec[]> {
    return (await this.walk()).recs;
  }

  /* ---- writing nodes ------------------------------------------------------------------------ */

  private writeEb(tx: Transaction, n: Node): void {
    if (!n.header) throw new Error('writeEb: root node');
    const buf = Buffer.alloc(this.vol.blockSize);
    ExtentBlockHeader.encode(n.header, buf, 0);
    encodeExtentList(n.list, buf, EXTENT_BLOCK_LIST_OFFSET);
    tx.writeMeta(n.blkno, buf, CHECK_OFFSET.extentBlock);
  }

  private newHeader(a: SubAlloc, nextLeaf: number): ExtentBlockHeaderT {
    return {
      h_signature: Buffer.from(OCFS2_EXTENT_BLOCK_SIGNATURE.padEnd(8, '\0'), 'latin1'),
      h_check: Buffer.alloc(8),
      h_suballoc_slot: a.suballocSlot,
      h_suballoc_bit: a.suballocBit,
      h_fs_generation: this.vol.sb.fsGeneration >>> 0,
      h_blkno: a.blkno,
      h_suballoc_loc: a.suballocLoc,
      h_next_leaf_blk: nextLeaf,
    };
  }

  private async newNode(tx: Transaction, depth: number, nextLeaf = 0): Promise<Node> {
    const a = await this.alloc.claimMetaBlock(tx);
    return {
      blkno: a.blkno,
      list: { treeDepth: depth, count: extentRecsPerExtentBlock(this.vol.blockSize), nextFreeRec: 0, reserved1: 0, reserved2: 0n, recs: [] },
      header: this.newHeader(a, nextLeaf),
    };
  }

  private async freeNode(tx: Transaction, n: Node): Promise<void> {
    const h = n.header!;
    await this.alloc.freeMetaBlock(tx, {
      blkno: n.blkno, suballocSlot: h.h_suballoc_slot, suballocBit: h.h_suballoc_bit, suballocLoc: h.h_suballoc_loc,
    });
  }

  /**
   * Recompute e_int_clusters of the interior nodes on `p` (bottom-up) and
   * write every node of the path from `from` up (plus the root).
   */
  private async writePath(tx: Transaction, p: Path, dirtyFrom: number): Promise<void> {
    const D = p.nodes.length - 1;
    const leaf = p.nodes[D]!.list;
    // End of the tree when this is the rightmost path.
    let treeEnd = -1;
    if (p.rightmost) {
      const last = leaf.recs[leaf.recs.length - 1];
      treeEnd = last ? last.cpos + last.clusters : p.lo[D]!;
    }
    for (let k = D - 1; k >= 0; k--) {
      const l = p.nodes[k]!.list;
      for (let j = 0; j < l.recs.length - 1; j++) l.recs[j]!.clusters = l.recs[j + 1]!.cpos - l.recs[j]!.cpos;
      const last = l.recs[l.recs.length - 1]!;
      const end = p.hi[k] === Infinity ? (p.rightmost ? treeEnd : last.cpos + last.clusters) : p.hi[k]!;
      last.clusters = Math.max(0, end - last.cpos);
    }
    for (let k = D; k >= 1; k--) if (k >= dirtyFrom || k < D) this.writeEb(tx, p.nodes[k]!);
    p.nodes[0]!.list.nextFreeRec = p.nodes[0]!.list.recs.length;
    await this.root.write(tx, p.nodes[0]!.list, p.lastEbBlk);
  }

  /* ---- insert ------------------------------------------------------------------------------- */

  /**
   * Map logical clusters [cpos, cpos+clusters) to physical block `blkno`
   * (cluster aligned).  The range must be a hole.
   */
  async insert(tx: Transaction, rec: LeafRec): Promise<void> {
    if (!(rec.clusters > 0) || !Number.isInteger(rec.cpos) || rec.cpos < 0 || rec.blkno % this.cb !== 0) {
      throw new RangeError(`extent insert: bad record ${JSON.stringify(rec)}`);
    }
    let left = { ...rec };
    while (left.clusters > 0) {
      const n = Math.min(left.clusters, MAX_LEAF_CLUSTERS);
      const piece = { ...left, clusters: n };
      const done = await this.insertPiece(tx, piece);
      left = { cpos: left.cpos + done, clusters: left.clusters - done, blkno: left.blkno + done * this.cb, flags: left.flags };
    }
  }

  /** Insert (a prefix of) `rec`; returns how many clusters were inserted. */
  private async insertPiece(tx: Transaction, rec: LeafRec): Promise<number> {
    for (let guard = 0; guard < 16; guard++) {
      const p = await this.findPath(rec.cpos);
      const D = p.nodes.length - 1;
      const leaf = p.nodes[D]!;
      const recs = leaf.list.recs;
      if (rec.cpos < p.lo[D]!) {
        // Before the first interior key (not a shape we make): rebuild.
        await this.rebuildWith(tx, rec);
        return rec.clusters;
      }
      const clusters = Math.min(rec.clusters, p.hi[D]! - rec.cpos);
      const r: LeafRec = { ...rec, clusters };
      // Position and overlap check.
      let at = 0;
      while (at < recs.length && recs[at]!.cpos < r.cpos) at++;
      const prev = recs[at - 1];
      const next = recs[at];
      if ((prev && prev.cpos + prev.clusters > r.cpos) || (next && next.cpos < r.cpos + r.clusters)) {
        throw new Ocfs2CorruptError(this.root.ownerBlkno, 'extent insert overlaps an existing record',
          `insert ${r.cpos}+${r.clusters}`);
      }
      const contig = (a: LeafRec | ExtentRec, b: LeafRec | ExtentRec): boolean =>
        a.flags === b.flags && a.cpos + a.clusters === b.cpos && a.blkno + a.clusters * this.cb === b.blkno
        && a.clusters + b.clusters <= MAX_LEAF_CLUSTERS;
      if (prev && contig(prev, r)) {
        prev.clusters += r.clusters;
        if (next && contig(prev, next)) { prev.clusters += next.clusters; recs.splice(at, 1); }
        await this.writePath(tx, p, D);
        return clusters;
      }
      if (next && contig(r, next)) {
        next.cpos = r.cpos; next.blkno = r.blkno; next.clusters += r.clusters;
        await this.writePath(tx, p, D);
        return clusters;
      }
      if (recs.length < leaf.list.count) {
        recs.splice(at, 0, toRec(r));
        leaf.list.nextFreeRec = recs.length;
        await this.writePath(tx, p, D);
        return clusters;
      }
      // The leaf is full.
      if (D === 0) { await this.shiftDepth(tx); continue; }
      if (p.rightmost && at === recs.length) { await this.appendBranch(tx, p, r); return clusters; }
      if (p.nodes[D - 1]!.list.recs.length < p.nodes[D - 1]!.list.count) { await this.splitLeaf(tx, p); continue; }
      await this.rebuildWith(tx, r);
      return clusters;
    }
    throw new Error('extent insert did not converge');
  }

  /** ocfs2_shift_tree_depth: the root's records move to a new block; the root points at it. */
  private async shiftDepth(tx: Transaction): Promise<void> {
    const { list, lastEbBlk } = await this.root.read();
    if (list.treeDepth >= MAX_DEPTH) throw new PosixError('EFBIG', 'extent tree at maximum depth');
    const n = await this.newNode(tx, list.treeDepth);
    n.list.recs = list.recs.map((r) => ({ ...r }));
    n.list.nextFreeRec = n.list.recs.length;
    this.writeEb(tx, n);
    const last = list.recs[list.recs.length - 1];
    const end = last ? last.cpos + last.clusters : 0;
    const root: ExtentList = {
      ...list, treeDepth: list.treeDepth + 1, nextFreeRec: 1,
      recs: [{ cpos: 0, clusters: end, blkno: n.blkno, flags: 0, reserved1: 0 }],
    };
    await this.root.write(tx, root, list.treeDepth === 0 ? n.blkno : lastEbBlk);
  }

  /** ocfs2_add_branch: a new rightmost leaf (and interior blocks below the lowest node with room). */
  private async appendBranch(tx: Transaction, p: Path, r: LeafRec): Promise<void> {
    const D = p.nodes.length - 1;
    let k = D - 1;
    while (k >= 0 && p.nodes[k]!.list.recs.length >= p.nodes[k]!.list.count) k--;
    if (k < 0) {
      await this.shiftDepth(tx);
      const q = await this.findPath(r.cpos);
      await this.appendBranch(tx, q, r);
      return;
    }
    // New blocks for levels k+1..D, each holding one record starting at r.cpos.
    const fresh: Node[] = [];
    for (let level = k + 1; level <= D; level++) fresh.push(await this.newNode(tx, D - level));
    const newLeaf = fresh[fresh.length - 1]!;
    newLeaf.list.recs = [toRec(r)];
    newLeaf.list.nextFreeRec = 1;
    for (let i = 0; i < fresh.length - 1; i++) {
      fresh[i]!.list.recs = [{ cpos: r.cpos, clusters: r.clusters, blkno: fresh[i + 1]!.blkno, flags: 0, reserved1: 0 }];
      fresh[i]!.list.nextFreeRec = 1;
    }
    const parent = p.nodes[k]!;
    parent.list.recs.push({ cpos: r.cpos, clusters: r.clusters, blkno: fresh[0]!.blkno, flags: 0, reserved1: 0 });
    parent.list.nextFreeRec = parent.list.recs.length;
    // Chain the old rightmost leaf to the new one.
    const oldLeaf = p.nodes[D]!;
    oldLeaf.header!.h_next_leaf_blk = newLeaf.blkno;
    this.writeEb(tx, oldLeaf);
    for (const f of fresh) this.writeEb(tx, f);
    // The new path: nodes[0..k] then the fresh blocks.
    const q: Path = {
      nodes: [...p.nodes.slice(0, k + 1), ...fresh],
      idx: [...p.idx.slice(0, k), parent.list.recs.length - 1, ...fresh.slice(0, -1).map(() => 0)],
      lo: [...p.lo.slice(0, k + 1), ...fresh.map(() => r.cpos)],
      hi: [...p.hi.slice(0, k + 1), ...fresh.map(() => Infinity)],
      rightmost: true,
      lastEbBlk: newLeaf.blkno,
    };
    await this.writePath(tx, q, 1);
  }

  /** Split a full leaf in two; the parent (which has room) gets a record for the right half. */
  private async splitLeaf(tx: Transaction, p: Path): Promise<void> {
    const D = p.nodes.length - 1;
    const leaf = p.nodes[D]!;
    const parent = p.nodes[D - 1]!;
    const right = await this.newNode(tx, 0, leaf.header!.h_next_leaf_blk);
    const mid = Math.ceil(leaf.list.recs.length / 2);
    right.list.recs = leaf.list.recs.splice(mid);
    right.list.nextFreeRec = right.list.recs.length;
    leaf.list.nextFreeRec = leaf.list.recs.length;
    leaf.header!.h_next_leaf_blk = right.blkno;
    const i = p.idx[D - 1]!;
    parent.list.recs.splice(i + 1, 0, { cpos: right.list.recs[0]!.cpos, clusters: 0, blkno: right.blkno, flags: 0, reserved1: 0 });
    parent.list.nextFreeRec = parent.list.recs.length;
    if (p.lastEbBlk === leaf.blkno) p.lastEbBlk = right.blkno;
    this.writeEb(tx, leaf);
    this.writeEb(tx, right);
    // Path through the right half for the cluster fixups (it is rightmost iff the old leaf was).
    const q: Path = {
      nodes: [...p.nodes.slice(0, D), right],
      idx: [...p.idx.slice(0, D - 1), i + 1],
      lo: [...p.lo.slice(0, D), right.list.recs[0]!.cpos],
      hi: [...p.hi],
      rightmost: p.rightmost,
      lastEbBlk: p.lastEbBlk,
    };
    await this.writePath(tx, q, D);
  }

  /* ---- rebuild ------------------------------------------------------------------------------- */

  private async rebuildWith(tx: Transaction, r: LeafRec): Promise<void> {
    const { recs } = await this.walk();
    if (recs.some((x) => x.cpos < r.cpos + r.clusters && r.cpos < x.cpos + x.clusters)) {
      throw new Ocfs2CorruptError(this.root.ownerBlkno, 'extent insert overlaps an existing record', `insert ${r.cpos}+${r.clusters}`);
    }
    recs.push(r);
    await this.rebuild(tx, recs);
  }

  /**
   * Write the tree anew from its leaf records (sorted and merged here),
   * reusing the existing extent blocks, claiming or freeing the difference.
   */
  private async rebuild(tx: Transaction, input: LeafRec[]): Promise<void> {
    const { blocks, rootList } = await this.walk();
    const recs = mergeRecs(input.filter((r) => r.clusters > 0).sort((a, b) => a.cpos - b.cpos), this.cb);
    const ebCount = extentRecsPerExtentBlock(this.vol.blockSize);
    const rootCount = rootList.count;
    const pool = blocks.map((b) => ({ blkno: b.blkno, h: b.header! }));
    const used: Node[] = [];
    const take = async (depth: number): Promise<Node> => {
      const b = pool.shift();
      const n: Node = b
        ? {
          blkno: b.blkno,
          list: { treeDepth: depth, count: ebCount, nextFreeRec: 0, reserved1: 0, reserved2: 0n, recs: [] },
          header: { ...b.h, h_next_leaf_blk: 0 },
        }
        : await this.newNode(tx, depth);
      used.push(n);
      return n;
    };
    let level: Array<{ start: number; node: Node | null; recs: ExtentRec[] }>;
    let depth = 0;
    let lastLeaf = 0;
    if (recs.length <= rootCount) {
      level = [{ start: 0, node: null, recs: recs.map(toRec) }];
    } else {
      // Leaves, packed full (as appends leave them).
      level = [];
      for (let i = 0; i < recs.length; i += ebCount) {
        const chunk = recs.slice(i, i + ebCount).map(toRec);
        const node = await take(0);
        node.list.recs = chunk;
        node.list.nextFreeRec = chunk.length;
        level.push({ start: i === 0 ? 0 : chunk[0]!.cpos, node, recs: chunk });
      }
      for (let i = 0; i < level.length - 1; i++) level[i]!.node!.header!.h_next_leaf_blk = level[i + 1]!.node!.blkno;
      lastLeaf = level[level.length - 1]!.node!.blkno;
      const last = recs[recs.length - 1]!;
      const treeEnd = last.cpos + last.clusters;
      // Interior levels until the top fits in the root.
      for (;;) {
        depth++;
        if (depth > MAX_DEPTH) throw new PosixError('EFBIG', 'extent tree would exceed the maximum depth');
        const toRecs = (items: typeof level, end: number): ExtentRec[] => items.map((it, j) => ({
          cpos: it.start, clusters: (j + 1 < items.length ? items[j + 1]!.start : end) - it.start,
          blkno: it.node!.blkno, flags: 0, reserved1: 0,
        }));
        if (level.length <= rootCount) {
          level = [{ start: 0, node: null, recs: toRecs(level, treeEnd) }];
          break;
        }
        const up: typeof level = [];
        for (let i = 0; i < level.length; i += ebCount) {
          const items = level.slice(i, i + ebCount);
          const end = i + ebCount < level.length ? level[i + ebCount]!.start : treeEnd;
          const node = await take(depth);
          node.list.recs = toRecs(items, end);
          node.list.nextFreeRec = node.list.recs.length;
          up.push({ start: items[0]!.start, node, recs: node.list.recs });
        }
        level = up;
      }
    }
    for (const n of used) this.writeEb(tx, n);
    for (const b of pool) await this.freeNode(tx, { blkno: b.blkno, list: rootList, header: b.h });
    const top = level[0]!;
    const root: ExtentList = { ...rootList, treeDepth: depth, nextFreeRec: top.recs.length, recs: top.recs };
    await this.root.write(tx, root, lastLeaf);
  }

  /* ---- remove / setFlags -------------------------------------------------------------------- */

  /**
   * Cut [cpos, cpos+clusters) out of the tree (truncate, punch hole).
   * Returns the removed pieces (their physical runs are the caller's to free).
   */
  async remove(tx: Transaction, cpos: number, clusters: number): Promise<LeafRec[]> {
    if (clusters <= 0) return [];
    return this.rewriteRange(tx, cpos, clusters, (piece) => ({ keep: null, removed: piece }));
  }

  /** Change the flags of [cpos, cpos+clusters) (e.g. clear UNWRITTEN), splitting records at the edges. */
  async setFlags(tx: Transaction, cpos: number, clusters: number, set: number, clear: number): Promise<void> {
    if (clusters <= 0) return;
    await this.rewriteRange(tx, cpos, clusters, (piece) => ({ keep: { ...piece, flags: (piece.flags | set) & ~clear & 0xff }, removed: null }));
  }

  private async rewriteRange(
    tx: Transaction, cpos: number, clusters: number,
    fn: (piece: LeafRec) => { keep: LeafRec | null; removed: LeafRec | null },
  ): Promise<LeafRec[]> {
    const end = cpos + clusters;
    const cut = (recs: LeafRec[]): { out: LeafRec[]; removed: LeafRec[]; touched: boolean } => {
      const out: LeafRec[] = [];
      const removed: LeafRec[] = [];
      let touched = false;
      for (const r of recs) {
        const rEnd = r.cpos + r.clusters;
        if (rEnd <= cpos || r.cpos >= end) { out.push(r); continue; }
        touched = true;
        const a = Math.max(r.cpos, cpos);
        const b = Math.min(rEnd, end);
        if (r.cpos < a) out.push({ ...r, clusters: a - r.cpos });
        const mid = { cpos: a, clusters: b - a, blkno: r.blkno + (a - r.cpos) * this.cb, flags: r.flags };
        const res = fn(mid);
        if (res.keep) out.push(res.keep);
        if (res.removed) removed.push(res.removed);
        if (b < rEnd) out.push({ cpos: b, clusters: rEnd - b, blkno: r.blkno + (b - r.cpos) * this.cb, flags: r.flags });
      }
      return { out, removed, touched };
    };
    // Fast path: the range lies inside one leaf's range and the leaf stays non-empty and fits.
    const p = await this.findPath(cpos);
    const D = p.nodes.length - 1;
    if (cpos >= p.lo[D]! && end <= p.hi[D]!) {
      const leaf = p.nodes[D]!;
      const { out, removed, touched } = cut(leaf.list.recs.map(leafOf));
      if (!touched) return [];
      const merged = mergeRecs(out, this.cb);
      if (merged.length <= leaf.list.count && (merged.length > 0 || D === 0)) {
        leaf.list.recs = merged.map(toRec);
        leaf.list.nextFreeRec = merged.length;
        await this.writePath(tx, p, D);
        return removed;
      }
    }
    const { recs } = await this.walk();
    const { out, removed, touched } = cut(recs);
    if (!touched) return [];
    await this.rebuild(tx, out);
    return removed;
  }
}

/** Merge physically and logically contiguous neighbours with equal flags (sorted input). */
export function mergeRecs(recs: LeafRec[], clusterBlocks: number): LeafRec[] {
  const out: LeafRec[] = [];
  for (const r of recs) {
    const p = out[out.length - 1];
    if (p && p.flags === r.flags && p.cpos + p.clusters === r.cpos && p.blkno + p.clusters * clusterBlocks === r.blkno
        && p.clusters + r.clusters <= MAX_LEAF_CLUSTERS) {
      p.clusters += r.clusters;
    } else out.push({ ...r });
  }
  return out;
}
