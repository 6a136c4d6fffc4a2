/**
 * The allocators of one mounted slot (fs/ocfs2/suballoc.c, localalloc.c and
 * the truncate log of alloc.c):
 *
 * - clusters: from the slot's local alloc window (local_alloc:NNNN) when the
 *   request is at most half a window, else (or when no window can be had)
 *   from the global bitmap; a window is a run of the global bitmap marked
 *   used there while we hold it, with la_bitmap saying what is really used;
 * - freed clusters go to the slot's truncate log (truncate_log:NNNN) and
 *   reach the global bitmap when the log is flushed (full, unmount, and on
 *   ENOSPC in a committed transaction of its own: freeTruncateLog);
 * - inodes and metadata blocks: from inode_alloc:NNNN / extent_alloc:NNNN,
 *   which grow by whole groups of cl_cpg clusters taken straight from the
 *   global bitmap, or by discontiguous groups (bg_list) when DISCONTIG_BG is
 *   on and no contiguous run is left; when a slot's allocator cannot grow,
 *   bits are taken from other slots' allocators (ocfs2_steal_resource).
 *
 * Clusters freed to the global bitmap during a transaction are not handed
 * out again in that same transaction (the kernel's "last committed data"
 * rule, ocfs2_test_bg_bit_allocatable): data written into them before the
 * commit would otherwise overwrite a file that a crash brings back.
 */
import { CHECK_OFFSET } from '../blockcheck';
import {
  OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_GROUP_DESC_SIGNATURE, OCFS2_INVALID_SLOT,
  OCFS2_INVALID_SLOT_U16,
} from '../constants';
import { Ocfs2CorruptError, PosixError } from '../errors';
import {
  DINODE_ID2_OFFSET, DinodeHeader, inodeChainList, inodeLocalAlloc, inodeTruncateLog, readId1Bitmap,
  writeId1Bitmap, writeInodeChainList, writeInodeLocalAlloc, writeInodeTruncateLog,
} from '../structs/dinode';
import { LocalAllocHeader, localAllocBitmapCapacity, localAllocProblems } from '../structs/localalloc';
import { encodeExtentList, emptyExtentList, type ExtentRec } from '../structs/extent';
import {
  GROUP_LIST_OFFSET, GroupDescHeader, extentRecsPerGroupDesc, groupBitmapSize, setBit, testBit,
} from '../structs/group';
import {
  EXTENT_ALLOC_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, LOCAL_ALLOC_SYSTEM_INODE,
  TRUNCATE_LOG_SYSTEM_INODE, systemFileName,
} from '../sysfiles';
import type { Transaction, TransactionManager } from '../txn';
import type { Volume } from '../volume';
import { ChainAllocator, type BitClaim } from './chain';

export interface ClusterRun {
  /** Physical cluster number. */
  start: number;
  count: number;
}

export interface SubAlloc {
  blkno: number;
  suballocSlot: number;
  suballocBit: number;
  /** The group's block when the group is discontiguous, else 0. */
  suballocLoc: number;
}

/** OCFS2_LA_MAX_DEFAULT_MB / OCFS2_LA_OLD_DEFAULT of localalloc.c. */
const LA_MAX_DEFAULT_MB = 256;
const LA_OLD_DEFAULT_MB = 8;

type LaState = 'unused' | 'enabled' | 'throttled' | 'disabled';

export class Allocators {
  readonly global: ChainAllocator;
  private readonly inodeAllocs = new Map<number, ChainAllocator>();
  private readonly metaAllocs = new Map<number, ChainAllocator>();
  readonly localAllocBlkno: number;
  readonly truncateLogBlkno: number;
  /** Clusters per local alloc window (osb->local_alloc_default_bits). */
  readonly localAllocDefaultBits: number;
  private localAllocBits: number;
  private laState: LaState;
  /** Cluster runs released to the global bitmap in a transaction: not reusable in it. */
  private readonly freedIn = new WeakMap<Transaction, ClusterRun[]>();
  private lastInodeGroup = 0;
  private lastMetaGroup = 0;

  private constructor(readonly vol: Volume, readonly slot: number, readonly offline: boolean) {
    this.global = new ChainAllocator(vol, vol.systemFile(systemFileName(GLOBAL_BITMAP_SYSTEM_INODE, OCFS2_INVALID_SLOT)), true);
    this.localAllocBlkno = vol.systemFile(systemFileName(LOCAL_ALLOC_SYSTEM_INODE, slot));
    this.truncateLogBlkno = vol.systemFile(systemFileName(TRUNCATE_LOG_SYSTEM_INODE, slot));
    this.localAllocDefaultBits = Allocators.defaultLocalAllocBits(vol);
    this.localAllocBits = this.localAllocDefaultBits;
    // Offline tools (tunefs) allocate straight from the global bitmap, as libocfs2 does.
    this.laState = this.localAllocBits > 0 && !offline ? 'enabled' : 'unused';
  }

  /**
   * `offline`: for tools working on an unmounted volume (libocfs2's
   * behaviour): no local alloc window, freed clusters go straight back to the
   * global bitmap instead of the truncate log.
   */
  static async load(vol: Volume, slot: number, opts: { offline?: boolean } = {}): Promise<Allocators> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= vol.maxSlots) {
      throw new PosixError('EINVAL', `slot ${slot} outside 0..${vol.maxSlots - 1}`);
    }
    const a = new Allocators(vol, slot, opts.offline ?? false);
    // Validate what we will write to.
    await a.global.state();
    await a.readLocalAlloc();
    await a.readTruncateLog();
    await a.suballoc('inode', slot).state();
    await a.suballoc('meta', slot).state();
    return a;
  }

  /** ocfs2_la_default_mb + ocfs2_la_set_sizes (no mount option), in clusters. */
  static defaultLocalAllocBits(vol: Volume): number {
    const bs = vol.blockSize;
    const cs = vol.clusterSize;
    const shift = 20 - vol.clusterBits;
    const toMb = (clusters: number): number => (shift >= 0 ? Math.floor(clusters / 2 ** shift) : clusters * 2 ** -shift);
    const toClusters = (mb: number): number => (shift >= 0 ? mb * 2 ** shift : Math.floor(mb / 2 ** -shift));
    // The cluster group bitmap is the rest of the block after the 64-byte header.
    const laMaxMb = toMb((bs - DINODE_ID2_OFFSET - LocalAllocHeader.size) * 8);
    let laMb: number;
    if ((bs === 512 && cs <= 8192) || (bs === 1024 && cs === 4096)) {
      laMb = LA_OLD_DEFAULT_MB;
    } else {
      let gdMb = toMb(8 * (bs - GroupDescHeader.size));
      gdMb = (gdMb - 16) & 0xfffffffb;
      laMb = gdMb;
      if (laMb > LA_MAX_DEFAULT_MB) {
        if (gdMb > 2 * LA_MAX_DEFAULT_MB) laMb = 256;
        else {
          let m = gdMb;
          while (m > 256) m >>>= 1;
          laMb = m;
        }
      }
      const megsPerSlot = toMb(Math.floor(vol.sb.clusters / vol.maxSlots));
      if (megsPerSlot < laMb) laMb = megsPerSlot;
      if (laMb > laMaxMb) laMb = laMaxMb;
    }
    return toClusters(laMb);
  }

  /* ---- helpers ------------------------------------------------------------------------------ */

  private suballoc(kind: 'inode' | 'meta', slot: number): ChainAllocator {
    const map = kind === 'inode' ? this.inodeAllocs : this.metaAllocs;
    let a = map.get(slot);
    if (!a) {
      const type = kind === 'inode' ? INODE_ALLOC_SYSTEM_INODE : EXTENT_ALLOC_SYSTEM_INODE;
      a = new ChainAllocator(this.vol, this.vol.systemFile(systemFileName(type, slot)), false);
      map.set(slot, a);
    }
    return a;
  }

  private get clusterBlocks(): number { return this.vol.clusterBlocks; }

  private get firstClusterGroup(): number { return this.vol.sb.raw.s_first_cluster_group; }

  /** The global bitmap group holding cluster `c` and the bit within it. */
  private async clusterToGroup(c: number): Promise<{ group: number; bit: number }> {
    const cpg = (await this.global.state()).cl.cpg;
    const k = Math.floor(c / cpg);
    return { group: k === 0 ? this.firstClusterGroup : k * cpg * this.clusterBlocks, bit: c % cpg };
  }

  /** First cluster covered by a global bitmap group. */
  private groupClusterOffset(groupBlkno: number): number {
    return groupBlkno === this.firstClusterGroup ? 0 : Math.floor(groupBlkno / this.clusterBlocks);
  }

  private unusableIn(tx: Transaction): ((group: number, bit: number) => boolean) | undefined {
    const runs = this.freedIn.get(tx);
    if (!runs || runs.length === 0) return undefined;
    return (group, bit) => {
      const c = this.groupClusterOffset(group) + bit;
      return runs.some((r) => c >= r.start && c < r.start + r.count);
    };
  }

  /** Claim from the global bitmap (clusters). */
  private async claimGlobal(tx: Transaction, min: number, want: number, goal?: number): Promise<ClusterRun | null> {
    let firstGroup: number | undefined;
    if (goal !== undefined && goal >= 0 && goal < this.vol.sb.clusters) firstGroup = (await this.clusterToGroup(goal)).group;
    const c = await this.global.claim(tx, min, want, { firstGroup, unusable: this.unusableIn(tx) });
    if (!c) return null;
    return { start: this.groupClusterOffset(c.groupBlkno) + c.bit, count: c.count };
  }

  /** Clear clusters in the global bitmap (split at group boundaries). */
  private async releaseToGlobal(tx: Transaction, run: ClusterRun, reusableInTx: boolean): Promise<void> {
    let start = run.start;
    let left = run.count;
    const cpg = (await this.global.state()).cl.cpg;
    while (left > 0) {
      const { group, bit } = await this.clusterToGroup(start);
      const n = Math.min(left, cpg - bit);
      await this.global.applyBits(tx, group, bit, n, false);
      start += n;
      left -= n;
    }
    if (!reusableInTx) {
      const list = this.freedIn.get(tx) ?? [];
      list.push({ ...run });
      this.freedIn.set(tx, list);
    }
  }

  /* ---- local alloc ------------------------------------------------------------------------- */

  private async readLocalAlloc(): Promise<{ buf: Buffer; bmOff: number; total: number; used: number; bitmap: Buffer; laSize: number }> {
    const { buf } = await this.vol.readInode(this.localAllocBlkno);
    const la = inodeLocalAlloc(buf, this.localAllocBlkno);
    const b = readId1Bitmap(buf);
    const p = localAllocProblems(la.header, b, localAllocBitmapCapacity(this.vol.blockSize, DINODE_ID2_OFFSET), this.vol.sb.clusters)[0];
    if (p) throw new Ocfs2CorruptError(this.localAllocBlkno, `local alloc ${p.field}: ${p.check}`, p.code);
    return { buf, bmOff: la.header.la_bm_off, total: b.i_total, used: b.i_used, bitmap: la.bitmap, laSize: la.header.la_size };
  }

  private writeLocalAlloc(tx: Transaction, shared: Buffer, bmOff: number, total: number, used: number, bitmap: Buffer): void {
    const buf = Buffer.from(shared);
    const la = inodeLocalAlloc(buf, this.localAllocBlkno);
    la.header.la_bm_off = bmOff;
    writeInodeLocalAlloc(buf, { header: la.header, bitmap });
    writeId1Bitmap(buf, { i_used: used, i_total: total });
    tx.writeMeta(this.localAllocBlkno, buf, CHECK_OFFSET.dinode);
  }

  /** ocfs2_sync_local_to_main + ocfs2_clear_local_alloc: give the unused window bits back. */
  private async dropWindow(tx: Transaction): Promise<void> {
    const la = await this.readLocalAlloc();
    if (la.total === 0) return;
    let i = 0;
    while (i < la.total) {
      if (testBit(la.bitmap, i)) { i++; continue; }
      let j = i;
      while (j < la.total && !testBit(la.bitmap, j)) j++;
      // Never written to: reusable at once.
      await this.releaseToGlobal(tx, { start: la.bmOff + i, count: j - i }, true);
      i = j;
    }
    this.writeLocalAlloc(tx, la.buf, 0, 0, 0, Buffer.alloc(la.laSize));
  }

  /** ocfs2_local_alloc_new_window: claim a window, shrinking it on ENOSPC down to 1 MiB, then disable. */
  private async newWindow(tx: Transaction): Promise<boolean> {
    const oneMb = Math.max(1, Math.floor((1 << 20) / this.vol.clusterSize));
    for (;;) {
      if (this.laState === 'disabled' || this.laState === 'unused') return false;
      const run = await this.claimGlobal(tx, this.localAllocBits, this.localAllocBits);
      if (run) {
        const la = await this.readLocalAlloc();
        this.writeLocalAlloc(tx, la.buf, run.start, run.count, 0, Buffer.alloc(la.laSize));
        return true;
      }
      const bits = this.localAllocBits >>> 1;
      if (bits > oneMb) { this.laState = 'throttled'; this.localAllocBits = bits; } else this.laState = 'disabled';
    }
  }

  private async claimLocal(tx: Transaction, min: number, want: number): Promise<ClusterRun | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const la = await this.readLocalAlloc();
      if (la.total > 0) {
        // ocfs2_local_alloc_find_clear_bits: the first run of `want`, else the longest (>= min).
        let best = -1; let bestLen = 0; let runStart = -1; let hit = -1;
        for (let i = 0; i <= la.total; i++) {
          const free = i < la.total && !testBit(la.bitmap, i);
          if (free) {
            if (runStart < 0) runStart = i;
            if (i - runStart + 1 >= want) { hit = runStart; break; }
          } else if (runStart >= 0) {
            if (i - runStart > bestLen) { bestLen = i - runStart; best = runStart; }
            runStart = -1;
          }
        }
        let start = -1; let count = 0;
        if (hit >= 0) { start = hit; count = want; } else if (bestLen >= min) { start = best; count = bestLen; }
        if (start >= 0) {
          const bitmap = Buffer.from(la.bitmap);
          for (let i = start; i < start + count; i++) setBit(bitmap, i);
          this.writeLocalAlloc(tx, la.buf, la.bmOff, la.total, la.used + count, bitmap);
          return { start: la.bmOff + start, count };
        }
      }
      if (attempt > 0) break;
      // ocfs2_local_alloc_slide_window
      if (this.laState === 'enabled') this.localAllocBits = this.localAllocDefaultBits;
      await this.dropWindow(tx);
      if (!(await this.newWindow(tx))) return null;
    }
    return null;
  }

  /* ---- truncate log ------------------------------------------------------------------------ */

  private async readTruncateLog(): Promise<{ buf: Buffer; tl: ReturnType<typeof inodeTruncateLog> }> {
    const { buf } = await this.vol.readInode(this.truncateLogBlkno);
    return { buf, tl: inodeTruncateLog(buf, this.truncateLogBlkno) };
  }

  /** Clusters waiting in the truncate log. */
  async truncateLogClusters(): Promise<number> {
    const { tl } = await this.readTruncateLog();
    return tl.recs.reduce((s, r) => s + r.t_clusters, 0);
  }

  /** __ocfs2_flush_truncate_log: free every record in the global bitmap, then tl_used = 0. */
  async flushTruncateLog(tx: Transaction): Promise<void> {
    const { buf, tl } = await this.readTruncateLog();
    if (tl.used === 0) return;
    // Newest first, as ocfs2_replay_truncate_records.
    for (let i = tl.recs.length - 1; i >= 0; i--) {
      const r = tl.recs[i]!;
      if (r.t_clusters > 0) await this.releaseToGlobal(tx, { start: r.t_start, count: r.t_clusters }, false);
    }
    const nb = Buffer.from(buf);
    // The kernel only resets tl_used; stale records stay behind it.
    writeInodeTruncateLog(nb, { ...tl, used: 0, recs: [] });
    tx.writeMeta(this.truncateLogBlkno, nb, CHECK_OFFSET.dinode);
    if (this.laState === 'disabled' || this.laState === 'throttled') {
      this.laState = 'enabled';
      this.localAllocBits = this.localAllocDefaultBits;
    }
  }

  /**
   * ocfs2_try_to_free_truncate_log: when an allocation failed with ENOSPC and
   * the truncate log holds clusters, flush it in a transaction of its own and
   * commit the journal, so that the freed clusters become allocatable (within
   * the flushing transaction they are not: the truncate that logged them may
   * not be committed yet, see freedIn).  True when clusters were freed and the
   * allocation is worth retrying.  Must be called outside any transaction.
   */
  async freeTruncateLog(tm: TransactionManager): Promise<boolean> {
    if ((await this.truncateLogClusters()) === 0) return false;
    await tm.run((tx) => this.flushTruncateLog(tx));
    await tm.flush();
    return true;
  }

  /** ocfs2_truncate_log_append: coalesce with the last record when contiguous. */
  async freeClusters(tx: Transaction, run: ClusterRun): Promise<void> {
    if (run.count <= 0) return;
    if (run.start < 0 || run.start + run.count > this.vol.sb.clusters) {
      throw new Ocfs2CorruptError(this.truncateLogBlkno, 'freeing clusters outside the volume', `${run.start}+${run.count}`);
    }
    if (this.offline) { await this.releaseToGlobal(tx, run, false); return; }
    let { buf, tl } = await this.readTruncateLog();
    const last = tl.recs[tl.recs.length - 1];
    if (last && last.t_start + last.t_clusters === run.start) {
      last.t_clusters += run.count;
    } else {
      if (tl.used >= tl.count) {
        await this.flushTruncateLog(tx);
        ({ buf, tl } = await this.readTruncateLog());
      }
      tl.recs.push({ t_start: run.start, t_clusters: run.count });
      tl.used = tl.recs.length;
    }
    const nb = Buffer.from(buf);
    writeInodeTruncateLog(nb, tl);
    tx.writeMeta(this.truncateLogBlkno, nb, CHECK_OFFSET.dinode);
    // The clusters may still be referenced by the committed tree: never reuse in this transaction.
    const list = this.freedIn.get(tx) ?? [];
    list.push({ ...run });
    this.freedIn.set(tx, list);
  }

  /* ---- clusters ------------------------------------------------------------------------------ */

  /**
   * Claim between `min` and `want` physically contiguous clusters (one run).
   * `goal`: a cluster to start looking near (the global bitmap group holding it is tried first).
   */
  async claimClusters(tx: Transaction, min: number, want: number, goal?: number): Promise<ClusterRun> {
    if (!Number.isInteger(min) || !Number.isInteger(want) || min < 1 || want < min) {
      throw new RangeError(`claimClusters: bad request min ${min}, want ${want}`);
    }
    // ocfs2_alloc_should_use_local: at most half a window.
    const useLocal = (this.laState === 'enabled' || this.laState === 'throttled') && want <= this.localAllocBits / 2;
    if (useLocal) {
      const r = await this.claimLocal(tx, min, want);
      if (r) return r;
    }
    let r = await this.claimGlobal(tx, min, want, goal);
    if (r) return r;
    // The space still held in our window (never written: reusable at once).  What the truncate log
    // holds is not reusable in this transaction: the caller frees it in one of its own and retries
    // (freeTruncateLog, ocfs2_try_to_free_truncate_log).
    if ((await this.readLocalAlloc()).total > 0) {
      await this.dropWindow(tx);
      r = await this.claimGlobal(tx, min, want, goal);
      if (r) return r;
    }
    throw new PosixError('ENOSPC', `no run of ${min} free clusters`);
  }

  /** Unmount: return the unused part of the window to the global bitmap and clear the local alloc. */
  async releaseLocalAlloc(tx: Transaction): Promise<void> {
    await this.dropWindow(tx);
  }

  /** The current window (for tests and tools). */
  async localAllocWindow(): Promise<{ start: number; total: number; used: number }> {
    const la = await this.readLocalAlloc();
    return { start: la.bmOff, total: la.total, used: la.used };
  }

  /**
   * Free clusters as the kernel's statfs counts them (global bitmap), plus
   * what we can hand out without anyone else: the unused part of our window
   * and the clusters waiting in our truncate log.
   */
  async statfs(): Promise<{ totalClusters: number; freeClusters: number }> {
    const g = await this.global.state();
    const la = await this.readLocalAlloc();
    const tl = await this.truncateLogClusters();
    return { totalClusters: g.bm.i_total, freeClusters: g.bm.i_total - g.bm.i_used + (la.total - la.used) + tl };
  }

  /* ---- suballocators ------------------------------------------------------------------------- */

  claimInode(tx: Transaction): Promise<SubAlloc> { return this.claimSub(tx, 'inode'); }

  claimMetaBlock(tx: Transaction): Promise<SubAlloc> { return this.claimSub(tx, 'meta'); }

  freeInode(tx: Transaction, a: SubAlloc): Promise<void> { return this.freeSub(tx, 'inode', a); }

  freeMetaBlock(tx: Transaction, a: SubAlloc): Promise<void> { return this.freeSub(tx, 'meta', a); }

  /**
   * A system inode from global_inode_alloc (libocfs2 ocfs2_new_system_inode:
   * i_suballoc_slot is OCFS2_INVALID_SLOT), growing it by a group when full.
   */
  async claimSystemInode(tx: Transaction): Promise<SubAlloc> {
    const gia = new ChainAllocator(this.vol, this.vol.systemFile(systemFileName(GLOBAL_INODE_ALLOC_SYSTEM_INODE)), false);
    let c = await gia.claim(tx, 1, 1);
    if (!c) {
      await this.growSuballoc(tx, gia);
      c = await gia.claim(tx, 1, 1);
    }
    if (!c) throw new PosixError('ENOSPC', 'no free system inode');
    // ocfs2_init_inode sets i_suballoc_loc to the group even when it is contiguous.
    return { ...this.toSubAlloc(OCFS2_INVALID_SLOT_U16, c), suballocLoc: c.groupBlkno };
  }

  private toSubAlloc(slot: number, c: BitClaim): SubAlloc {
    return { blkno: c.firstBlkno, suballocSlot: slot, suballocBit: c.bit, suballocLoc: c.discontig ? c.groupBlkno : 0 };
  }

  private async claimSub(tx: Transaction, kind: 'inode' | 'meta'): Promise<SubAlloc> {
    const own = this.suballoc(kind, this.slot);
    const hint = kind === 'inode' ? this.lastInodeGroup : this.lastMetaGroup;
    let c = await own.claim(tx, 1, 1, { firstGroup: hint || undefined });
    if (!c) {
      try {
        await this.growSuballoc(tx, own);
        c = await own.claim(tx, 1, 1);
      } catch (e) {
        if (!(e instanceof PosixError && e.code === 'ENOSPC')) throw e;
      }
    }
    if (c) {
      if (kind === 'inode') this.lastInodeGroup = c.groupBlkno; else this.lastMetaGroup = c.groupBlkno;
      return this.toSubAlloc(this.slot, c);
    }
    // ocfs2_steal_resource: the other slots' allocators, without growing them.
    for (let i = 1; i < this.vol.maxSlots; i++) {
      const slot = (this.slot + i) % this.vol.maxSlots;
      let other: ChainAllocator;
      try { other = this.suballoc(kind, slot); } catch { continue; }
      const s = await other.claim(tx, 1, 1);
      if (s) return this.toSubAlloc(slot, s);
    }
    throw new PosixError('ENOSPC', `no free ${kind === 'inode' ? 'inode' : 'metadata'} block`);
  }

  private async freeSub(tx: Transaction, kind: 'inode' | 'meta', a: SubAlloc): Promise<void> {
    if (a.suballocSlot === OCFS2_INVALID_SLOT || a.suballocSlot === OCFS2_INVALID_SLOT_U16
        || a.suballocSlot < 0 || a.suballocSlot >= this.vol.maxSlots) {
      throw new Ocfs2CorruptError(a.blkno, 'block not from a slot suballocator', `suballoc slot ${a.suballocSlot}`);
    }
    const alloc = this.suballoc(kind, a.suballocSlot);
    const group = a.suballocLoc || a.blkno - a.suballocBit;
    const c = await alloc.applyBits(tx, group, a.suballocBit, 1, false);
    if (c.firstBlkno !== a.blkno) {
      throw new Ocfs2CorruptError(a.blkno, 'suballoc bit does not map back to the block',
        `group ${group}, bit ${a.suballocBit} is block ${c.firstBlkno}`);
    }
    tx.forget(a.blkno);
  }

  /** A contiguous run from the global bitmap (groups bypass the local alloc: ALLOC_GROUPS_FROM_GLOBAL). */
  private async claimForGroup(tx: Transaction, min: number, want: number): Promise<ClusterRun | null> {
    return this.claimGlobal(tx, min, want);
  }

  /** ocfs2_block_group_alloc: a new group of cl_cpg clusters in the smallest chain. */
  private async growSuballoc(tx: Transaction, alloc: ChainAllocator): Promise<void> {
    const st = await alloc.state();
    const cl = st.cl;
    const cpg = cl.cpg;
    const bpc = cl.bpc;
    const discontigOk = (this.vol.sb.incompat & OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG) !== 0;
    const runs: ClusterRun[] = [];
    const contig = await this.claimForGroup(tx, cpg, cpg);
    if (contig) runs.push(contig);
    else {
      if (!discontigOk) throw new PosixError('ENOSPC', 'no contiguous run for a new allocator group');
      // ocfs2_block_group_alloc_discontig: halve the request until something fits,
      // then keep adding extents until the group has cpg clusters.
      const maxRecs = extentRecsPerGroupDesc(this.vol.blockSize);
      let minBits = cpg >> 1;
      let have = 0;
      try {
        while (have < cpg) {
          if (runs.length >= maxRecs) throw new PosixError('ENOSPC', 'discontiguous group out of extent records');
          const needed = cpg - have;
          let got: ClusterRun | null = null;
          for (let m = Math.min(minBits, needed); m >= 1 && !got; m >>= 1) got = await this.claimForGroup(tx, m, needed);
          if (!got) throw new PosixError('ENOSPC', 'no clusters for a discontiguous allocator group');
          runs.push(got);
          have += got.count;
          minBits = got.count;
        }
      } catch (e) {
        for (const r of runs) await this.releaseToGlobal(tx, r, true);
        throw e;
      }
    }

    // ocfs2_find_smallest_chain: an unused chain record first.
    let chain: number;
    if (cl.nextFreeRec < cl.count) chain = cl.nextFreeRec;
    else {
      chain = 0;
      for (let i = 1; i < cl.recs.length; i++) if (cl.recs[i]!.c_total < cl.recs[chain]!.c_total) chain = i;
    }
    const cb = this.clusterBlocks;
    const gdBlkno = runs[0]!.start * cb;
    const bs = this.vol.blockSize;
    const buf = Buffer.alloc(bs);
    const bits = cpg * bpc;
    const bgSize = groupBitmapSize(bs, true, discontigOk);
    const prevHead = chain < cl.recs.length ? cl.recs[chain]!.c_blkno : 0;
    GroupDescHeader.encode({
      bg_signature: Buffer.from(OCFS2_GROUP_DESC_SIGNATURE.padEnd(8, '\0'), 'latin1'),
      bg_size: bgSize, bg_bits: bits, bg_free_bits_count: bits - 1, bg_chain: chain,
      bg_generation: this.vol.sb.fsGeneration >>> 0, bg_contig_free_bits: 0, bg_reserved1: 0,
      bg_next_group: prevHead, bg_parent_dinode: alloc.blkno, bg_blkno: gdBlkno,
      bg_check: Buffer.alloc(8), bg_reserved2: 0n,
    }, buf, 0);
    if (runs.length > 1 || runs[0]!.count !== cpg) {
      const recs: ExtentRec[] = [];
      let cpos = 0;
      for (const r of runs) {
        recs.push({ cpos, clusters: r.count, flags: 0, reserved1: 0, blkno: r.start * cb });
        cpos += r.count;
      }
      const list = emptyExtentList(extentRecsPerGroupDesc(bs));
      list.recs = recs;
      list.nextFreeRec = recs.length;
      encodeExtentList(list, buf, GROUP_LIST_OFFSET);
    }
    // Bit 0: the descriptor itself.
    setBit(buf.subarray(GroupDescHeader.size), 0);
    tx.writeMeta(gdBlkno, buf, CHECK_OFFSET.groupDesc);

    const ibuf = Buffer.from(st.buf);
    const ncl = inodeChainList(ibuf, alloc.blkno);
    if (chain === ncl.recs.length) {
      ncl.recs.push({ c_free: 0, c_total: 0, c_blkno: 0 });
      ncl.nextFreeRec++;
    }
    const rec = ncl.recs[chain]!;
    rec.c_free += bits - 1;
    rec.c_total += bits;
    rec.c_blkno = gdBlkno;
    writeInodeChainList(ibuf, ncl);
    const bm = readId1Bitmap(ibuf);
    writeId1Bitmap(ibuf, { i_used: bm.i_used + 1, i_total: bm.i_total + bits });
    const h = DinodeHeader.decode(ibuf, 0);
    h.i_clusters += cpg;
    h.i_size = h.i_clusters * this.vol.clusterSize;
    DinodeHeader.encode(h, ibuf, 0);
    tx.writeMeta(alloc.blkno, ibuf, CHECK_OFFSET.dinode);
  }
}
