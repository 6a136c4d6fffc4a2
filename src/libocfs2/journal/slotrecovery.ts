/**
 * The allocation side of recovering a slot (ocfs2_begin/complete_local_alloc_recovery,
 * ocfs2_begin/complete_truncate_log_recovery; fsck.ocfs2's replay_local_allocs
 * and replay_truncate_logs): the unused bits of the slot's local alloc window
 * and every range in its truncate log go back to the global bitmap, and both
 * inodes are written back empty — all in one journaled transaction, so a
 * crash leaves either the old state (recovery runs again) or the new one.
 *
 * This works on the on-disk structures directly (group descriptors, the
 * global bitmap's chain list and i_used), independent of the Allocators of
 * the write path, so it can run before they are loaded.
 */
import { CHECK_OFFSET } from '../blockcheck';
import { Ocfs2CorruptError } from '../errors';
import {
  inodeChainList, inodeLocalAlloc, inodeTruncateLog, readId1Bitmap, writeId1Bitmap, writeInodeChainList,
  writeInodeLocalAlloc, writeInodeTruncateLog,
} from '../structs/dinode';
import { GroupDescHeader, GROUP_BITMAP_OFFSET, clearBit, testBit, validateGroupDesc } from '../structs/group';
import { LOCAL_ALLOC_SYSTEM_INODE, TRUNCATE_LOG_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, systemFileName } from '../sysfiles';
import type { Transaction, TransactionManager } from '../txn';
import type { Volume } from '../volume';

export interface ClusterRange { start: number; count: number }

/** Block number of the group descriptor that covers global-bitmap cluster group `g`. */
function clusterGroupBlkno(vol: Volume, g: number, cpg: number): number {
  return g === 0 ? vol.sb.raw.s_first_cluster_group : g * cpg * vol.clusterBlocks;
}

/**
 * Clear the bits of `ranges` in the global bitmap (group bitmaps, bg_free_bits_count,
 * chain c_free, the bitmap inode's i_used).  Bits already clear are a
 * corruption: nothing is changed and Ocfs2CorruptError is raised.
 */
export async function freeGlobalClusters(tx: Transaction, vol: Volume, ranges: readonly ClusterRange[]): Promise<number> {
  const bmBlkno = vol.systemFile(systemFileName(GLOBAL_BITMAP_SYSTEM_INODE));
  const bmIno = Buffer.from((await vol.readInode(bmBlkno)).buf);
  const cl = inodeChainList(bmIno, bmBlkno);
  const groups = new Map<number, Buffer>();
  let freed = 0;
  for (const r of ranges) {
    for (let c = r.start; c < r.start + r.count; c++) {
      if (c >= vol.sb.clusters) throw new Ocfs2CorruptError(bmBlkno, 'cluster to free is beyond the volume', `cluster ${c}`);
      const g = Math.floor(c / cl.cpg);
      const gblk = clusterGroupBlkno(vol, g, cl.cpg);
      let gd = groups.get(gblk);
      if (!gd) {
        gd = Buffer.from(await vol.readMetaBlock(gblk, CHECK_OFFSET.groupDesc));
        validateGroupDesc(gd, gblk, { fsGeneration: vol.sb.fsGeneration, parentDinode: bmBlkno });
        groups.set(gblk, gd);
      }
      const bit = c - g * cl.cpg;
      const bitmap = gd.subarray(GROUP_BITMAP_OFFSET);
      if (!testBit(bitmap, bit)) throw new Ocfs2CorruptError(gblk, 'freeing a cluster that is already free', `cluster ${c}`);
      clearBit(bitmap, bit);
      const fo = GroupDescHeader.offsetOf('bg_free_bits_count');
      gd.writeUInt16LE(gd.readUInt16LE(fo) + 1, fo);
      const chain = gd.readUInt16LE(GroupDescHeader.offsetOf('bg_chain'));
      const rec = cl.recs[chain];
      if (!rec) throw new Ocfs2CorruptError(gblk, 'group bg_chain beyond the chain list', `chain ${chain}`);
      rec.c_free++;
      freed++;
    }
  }
  if (freed === 0) return 0;
  for (const [blk, gd] of groups) tx.writeMeta(blk, gd, CHECK_OFFSET.groupDesc);
  writeInodeChainList(bmIno, cl);
  const bm = readId1Bitmap(bmIno);
  bm.i_used -= freed;
  writeId1Bitmap(bmIno, bm);
  tx.writeMeta(bmBlkno, bmIno, CHECK_OFFSET.dinode);
  return freed;
}

/**
 * Give slot `slot`'s local alloc window (its unused bits) and its truncate
 * log back to the global bitmap, and empty both inodes; one transaction.
 * Returns what was freed.  A no-op when both are already empty.
 */
export async function recoverSlotAllocState(vol: Volume, tm: TransactionManager, slot: number): Promise<{ localAlloc: number; truncateLog: number }> {
  return tm.run(async (tx) => {
    const laBlk = vol.systemFile(systemFileName(LOCAL_ALLOC_SYSTEM_INODE, slot));
    const tlBlk = vol.systemFile(systemFileName(TRUNCATE_LOG_SYSTEM_INODE, slot));
    const laIno = Buffer.from((await vol.readInode(laBlk)).buf);
    const tlIno = Buffer.from((await vol.readInode(tlBlk)).buf);
    const la = inodeLocalAlloc(laIno, laBlk);
    const laBm = readId1Bitmap(laIno);
    const ranges: ClusterRange[] = [];
    // ocfs2_sync_local_to_main: every window bit still clear in la_bitmap was never used.
    if (laBm.i_total > 0) {
      let runStart = -1;
      for (let i = 0; i <= laBm.i_total; i++) {
        const free = i < laBm.i_total && !testBit(la.bitmap, i);
        if (free && runStart < 0) runStart = i;
        if (!free && runStart >= 0) { ranges.push({ start: la.header.la_bm_off + runStart, count: i - runStart }); runStart = -1; }
      }
    }
    const laFreed = ranges.reduce((s, r) => s + r.count, 0);
    const tl = inodeTruncateLog(tlIno, tlBlk);
    let tlFreed = 0;
    for (const r of tl.recs) { if (r.t_clusters > 0) { ranges.push({ start: r.t_start, count: r.t_clusters }); tlFreed += r.t_clusters; } }
    if (laBm.i_total === 0 && la.header.la_bm_off === 0 && tl.used === 0) return { localAlloc: 0, truncateLog: 0 };
    await freeGlobalClusters(tx, vol, ranges);
    if (laBm.i_total !== 0 || la.header.la_bm_off !== 0 || laBm.i_used !== 0) {
      la.header.la_bm_off = 0;
      la.bitmap.fill(0);
      writeInodeLocalAlloc(laIno, la);
      writeId1Bitmap(laIno, { i_used: 0, i_total: 0 });
      tx.writeMeta(laBlk, laIno, CHECK_OFFSET.dinode);
    }
    if (tl.used !== 0) {
      writeInodeTruncateLog(tlIno, { ...tl, used: 0, recs: [] });
      tx.writeMeta(tlBlk, tlIno, CHECK_OFFSET.dinode);
    }
    return { localAlloc: laFreed, truncateLog: tlFreed };
  });
}
