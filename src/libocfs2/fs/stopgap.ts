/**
 * A minimal allocator and flat extent tree, used only until the real ones
 * (src/libocfs2/alloc, src/libocfs2/extenttree.ts) are available, and in
 * tests of the operations alone.  Limits: suballocators never grow (mkfs
 * gives inode_alloc and extent_alloc one group each), clusters come straight
 * from the global bitmap (no local alloc window, no truncate log), extent
 * trees stay at depth 0 (ENOSPC when the inode's list is full), discontiguous
 * groups are skipped.
 */
import { PosixError } from '../errors';
import { CHECK_OFFSET } from '../blockcheck';
import {
  inodeChainList, readId1Bitmap, writeId1Bitmap, writeInodeChainList, inodeExtentList,
  writeInodeExtentList,
} from '../structs/dinode';
import {
  GroupDescHeader, GROUP_BITMAP_OFFSET, groupIsDiscontig, validateGroupDesc, testBit, setBit, clearBit, longestZeroRun,
} from '../structs/group';
import { systemFileName, INODE_ALLOC_SYSTEM_INODE, EXTENT_ALLOC_SYSTEM_INODE } from '../sysfiles';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';
import type { ClusterRun, FsAllocators, FsExtentTree, LeafRec, SubAlloc } from './types';

interface Claim { groupBlkno: number; bit: number; count: number }

class ChainAlloc {
  constructor(private readonly vol: Volume, readonly blkno: number, private readonly clusterBitmap: boolean) {}

  private async groups(): Promise<Array<{ chain: number; blkno: number }>> {
    const { buf } = await this.vol.readInode(this.blkno);
    const cl = inodeChainList(buf, this.blkno);
    const all: Array<{ chain: number; blkno: number }> = [];
    for (let chain = 0; chain < cl.recs.length; chain++) {
      let g = cl.recs[chain]!.c_blkno;
      for (let n = 0; g && n < 100000; n++) {
        all.push({ chain, blkno: g });
        const gb = await this.vol.readMetaBlock(g, CHECK_OFFSET.groupDesc);
        g = GroupDescHeader.decode(gb, 0).bg_next_group;
      }
    }
    return all;
  }

  /** Claim `min..want` contiguous bits in one group. */
  async claim(tx: Transaction, min: number, want: number): Promise<Claim> {
    for (const { chain, blkno } of await this.groups()) {
      const gb = await this.vol.readMetaBlock(blkno, CHECK_OFFSET.groupDesc);
      const h = validateGroupDesc(gb, blkno);
      if (h.bg_free_bits_count < min || (!this.clusterBitmap && groupIsDiscontig(gb))) continue;
      const bm = gb.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + h.bg_size);
      let best = -1; let bestLen = 0;
      for (let i = 0; i < h.bg_bits;) {
        if (testBit(bm, i)) { i++; continue; }
        let j = i;
        while (j < h.bg_bits && !testBit(bm, j) && j - i < want) j++;
        if (j - i > bestLen) { best = i; bestLen = j - i; }
        if (bestLen >= want) break;
        i = j + 1;
      }
      if (bestLen < min) continue;
      await this.update(tx, chain, blkno, best, bestLen, true);
      return { groupBlkno: blkno, bit: best, count: bestLen };
    }
    throw new PosixError('ENOSPC');
  }

  async update(tx: Transaction, chain: number, groupBlkno: number, bit: number, count: number, set: boolean): Promise<void> {
    const g = Buffer.from(await this.vol.readMetaBlock(groupBlkno, CHECK_OFFSET.groupDesc));
    const h = GroupDescHeader.decode(g, 0);
    const bm = g.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + h.bg_size);
    for (let i = bit; i < bit + count; i++) { if (set) setBit(bm, i); else clearBit(bm, i); }
    h.bg_free_bits_count += set ? -count : count;
    h.bg_contig_free_bits = longestZeroRun(bm, h.bg_bits);
    GroupDescHeader.encode(h, g, 0);
    tx.writeMeta(groupBlkno, g, CHECK_OFFSET.groupDesc);
    const ib = Buffer.from((await this.vol.readInode(this.blkno)).buf);
    const cl = inodeChainList(ib, this.blkno);
    cl.recs[chain]!.c_free += set ? -count : count;
    writeInodeChainList(ib, cl);
    const b = readId1Bitmap(ib);
    b.i_used += set ? count : -count;
    writeId1Bitmap(ib, b);
    tx.writeMeta(this.blkno, ib, CHECK_OFFSET.dinode);
  }

  async chainOf(groupBlkno: number): Promise<number> {
    for (const g of await this.groups()) if (g.blkno === groupBlkno) return g.chain;
    throw new PosixError('EIO', `group ${groupBlkno} not in allocator ${this.blkno}`);
  }
}

export class StopgapAllocators implements FsAllocators {
  private readonly global: ChainAlloc;
  private readonly inodes: ChainAlloc;
  private readonly meta: ChainAlloc;

  constructor(private readonly vol: Volume, private readonly slot: number) {
    this.global = new ChainAlloc(vol, vol.systemFile('global_bitmap'), true);
    this.inodes = new ChainAlloc(vol, vol.systemFile(systemFileName(INODE_ALLOC_SYSTEM_INODE, slot)), false);
    this.meta = new ChainAlloc(vol, vol.systemFile(systemFileName(EXTENT_ALLOC_SYSTEM_INODE, slot)), false);
  }

  /** First cluster covered by a cluster group (the first group's descriptor is not at its start). */
  private groupStartCluster(groupBlkno: number): number {
    return groupBlkno === this.vol.sb.raw.s_first_cluster_group ? 0 : Math.floor(groupBlkno / this.vol.clusterBlocks);
  }

  async claimClusters(tx: Transaction, min: number, want: number): Promise<ClusterRun> {
    const c = await this.global.claim(tx, min, want);
    return { start: this.groupStartCluster(c.groupBlkno) + c.bit, count: c.count };
  }

  async freeClusters(tx: Transaction, run: ClusterRun): Promise<void> {
    const cpg = inodeChainList((await this.vol.readInode(this.global.blkno)).buf, this.global.blkno).cpg;
    let start = run.start; let left = run.count;
    while (left > 0) {
      const gi = Math.floor(start / cpg);
      const gblk = gi === 0 ? this.vol.sb.raw.s_first_cluster_group : gi * cpg * this.vol.clusterBlocks;
      const bit = start - gi * cpg;
      const n = Math.min(left, cpg - bit);
      await this.global.update(tx, await this.global.chainOf(gblk), gblk, bit, n, false);
      start += n; left -= n;
    }
  }

  private async claimSub(tx: Transaction, a: ChainAlloc): Promise<SubAlloc> {
    const c = await a.claim(tx, 1, 1);
    return { blkno: c.groupBlkno + c.bit, suballocSlot: this.slot, suballocBit: c.bit, suballocLoc: 0 };
  }

  claimInode(tx: Transaction): Promise<SubAlloc> { return this.claimSub(tx, this.inodes); }
  claimMetaBlock(tx: Transaction): Promise<SubAlloc> { return this.claimSub(tx, this.meta); }

  private async freeSub(tx: Transaction, a: ChainAlloc, s: SubAlloc): Promise<void> {
    const group = s.suballocLoc || s.blkno - s.suballocBit;
    await a.update(tx, await a.chainOf(group), group, s.suballocBit, 1, false);
  }

  freeInode(tx: Transaction, s: SubAlloc): Promise<void> { return this.freeSub(tx, this.inodes, s); }
  freeMetaBlock(tx: Transaction, s: SubAlloc): Promise<void> { return this.freeSub(tx, this.meta, s); }

  async statfs(): Promise<{ totalClusters: number; freeClusters: number }> {
    const b = readId1Bitmap((await this.vol.readInode(this.global.blkno)).buf);
    return { totalClusters: b.i_total, freeClusters: b.i_total - b.i_used };
  }
}

/** A depth-0 extent tree in the inode (records merged with contiguous neighbours). */
export class StopgapExtentTree implements FsExtentTree {
  constructor(private readonly vol: Volume, private readonly blkno: number) {}

  private async load(): Promise<{ buf: Buffer; recs: LeafRec[]; count: number }> {
    const buf = Buffer.from((await this.vol.readInode(this.blkno)).buf);
    const list = inodeExtentList(buf, this.blkno);
    if (list.treeDepth !== 0) throw new PosixError('EFBIG', 'stopgap extent tree: depth > 0');
    return { buf, recs: list.recs.map((r) => ({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags })), count: list.count };
  }

  private store(tx: Transaction, buf: Buffer, recs: LeafRec[], count: number): void {
    const cb = this.vol.clusterBlocks;
    recs.sort((a, b) => a.cpos - b.cpos);
    const merged: LeafRec[] = [];
    for (const r of recs) {
      const p = merged[merged.length - 1];
      if (p && p.flags === r.flags && p.cpos + p.clusters === r.cpos && p.blkno + p.clusters * cb === r.blkno && p.clusters + r.clusters <= 0xffff) {
        p.clusters += r.clusters;
      } else merged.push({ ...r });
    }
    if (merged.length > count) throw new PosixError('ENOSPC', 'stopgap extent tree: inode extent list full');
    const list = inodeExtentList(buf, this.blkno);
    writeInodeExtentList(buf, {
      ...list, nextFreeRec: merged.length,
      recs: merged.map((r) => ({ cpos: r.cpos, clusters: r.clusters, blkno: r.blkno, flags: r.flags, reserved1: 0 })),
    });
    tx.writeMeta(this.blkno, buf, CHECK_OFFSET.dinode);
  }

  async insert(tx: Transaction, rec: LeafRec): Promise<void> {
    const { buf, recs, count } = await this.load();
    recs.push({ ...rec });
    this.store(tx, buf, recs, count);
  }

  /** Split records so that [cpos, cpos+n) is covered by whole records. */
  private split(recs: LeafRec[], cpos: number, n: number): LeafRec[] {
    const cb = this.vol.clusterBlocks;
    const out: LeafRec[] = [];
    for (const r of recs) {
      const cuts = [r.cpos, Math.max(r.cpos, Math.min(cpos, r.cpos + r.clusters)),
        Math.max(r.cpos, Math.min(cpos + n, r.cpos + r.clusters)), r.cpos + r.clusters];
      for (let i = 0; i < 3; i++) {
        if (cuts[i + 1]! > cuts[i]!) out.push({ cpos: cuts[i]!, clusters: cuts[i + 1]! - cuts[i]!, blkno: r.blkno + (cuts[i]! - r.cpos) * cb, flags: r.flags });
      }
    }
    return out;
  }

  async remove(tx: Transaction, cpos: number, clusters: number): Promise<LeafRec[]> {
    const { buf, recs, count } = await this.load();
    const parts = this.split(recs, cpos, clusters);
    const inside = (r: LeafRec) => r.cpos >= cpos && r.cpos + r.clusters <= cpos + clusters;
    const kept = parts.filter((r) => !inside(r));
    const removed = parts.filter(inside);
    // Keep neighbours split rather than re-merging the removed piece.
    this.store(tx, buf, kept, count);
    return removed;
  }

  async setFlags(tx: Transaction, cpos: number, clusters: number, set: number, clear: number): Promise<void> {
    const { buf, recs, count } = await this.load();
    const parts = this.split(recs, cpos, clusters).map((r) =>
      (r.cpos >= cpos && r.cpos + r.clusters <= cpos + clusters ? { ...r, flags: (r.flags | set) & ~clear } : r));
    this.store(tx, buf, parts, count);
  }
}

