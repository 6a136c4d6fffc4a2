/**
 * User and group quotas (ro-compat USRQUOTA / GRPQUOTA) in the kernel's
 * formats: the global files aquota.user / aquota.group hold one quota tree
 * each (quota_tree.c over ocfs2_global_disk_dqblk: limits, usage, grace
 * times), the per-slot local files aquota.user:NNNN hold a node's pending
 * changes (quota_local.c: info block, chunks with a bitmap of local dquots).
 *
 * Usage is what fsck.ocfs2 (ocfs2_compute_quota_usage) recounts: every valid
 * non-system inode (the root directory included) counts one inode and
 * i_clusters clusters in bytes, for its uid and for its gid.  The kernel
 * charges exactly these allocations (ocfs2_add_inode_data, inline-data
 * conversion; xattr and metadata blocks are not charged).
 *
 * We keep that by watching inodes, not call sites: `QuotaTracker.run` wraps
 * one filesystem transaction, notes the content each inode block had before
 * its first write, and at the end turns the before/after difference of every
 * written inode into per-id deltas that are checked against the limits
 * (EDQUOT aborts the whole transaction: nothing is half-written) and written
 * to the global file in the same journaled transaction.  The kernel batches
 * deltas in the slot's local file to spare the cluster lock of the global
 * file; one node at a time has no such contention, so our local file stays
 * empty but is marked in use (OLQF_CLEAN cleared) while mounted, as the
 * kernel's is.  A crashed slot's local file is merged into the global file at
 * mount (ocfs2_recover_local_quota_file).
 */
import { CHECK_OFFSET } from './blockcheck';
import {
  OCFS2_FEATURE_RO_COMPAT_GRPQUOTA, OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_INODE_SIGNATURE, OCFS2_SYSTEM_FL, OCFS2_VALID_FL, hasSignature,
} from './constants';
import { Ocfs2CorruptError, PosixError } from './errors';
import { allLeafExtents } from './extentmap';
import { DinodeHeader, inodeExtentList } from './structs/dinode';
import {
  DiskDqHeader, DiskDqdbHeader, GlobalDiskDqblk, GlobalDiskDqinfo, LocalDiskChunk, LocalDiskDqblk, LocalDiskDqinfo,
  OCFS2_GLOBAL_QMAGICS, OCFS2_LOCAL_QMAGICS, OLQF_CLEAN, QT_TREEOFF, QUOTA_INFO_OFFSET, localChunkBlock, localDqblkLocation,
  localQuotaGeometry, qtreeGeometry, qtreeIndex, quotaCheckOffset, type QtreeGeometry,
} from './structs/quota';
import { testBit, clearBit } from './structs/group';
import {
  GROUP_QUOTA_SYSTEM_INODE, LOCAL_GROUP_QUOTA_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE, USER_QUOTA_SYSTEM_INODE, systemFileName,
} from './sysfiles';
import type { Transaction } from './txn';
import type { Volume } from './volume';
import type { FsAllocators, FsExtentTree } from './fs/types';

export const USRQUOTA = 0;
export const GRPQUOTA = 1;
export type QuotaType = typeof USRQUOTA | typeof GRPQUOTA;
export const QUOTA_TYPE_NAMES = ['user', 'group'] as const;

/** One id's quota: limits (space in bytes, as ocfs2 stores them), usage, grace deadlines (0 = none). */
export interface Dquot {
  id: number;
  useCount: number;
  bhardlimit: bigint; bsoftlimit: bigint; curspace: bigint; btime: bigint;
  ihardlimit: bigint; isoftlimit: bigint; curinodes: bigint; itime: bigint;
}

export interface QuotaInfo { bgrace: number; igrace: number; syncms: number; blocks: number; freeBlk: number; freeEntry: number }

export interface QuotaLimits { bsoftlimit?: bigint; bhardlimit?: bigint; isoftlimit?: bigint; ihardlimit?: bigint }

/** What the write path needs to grow a quota file. */
export interface QuotaIo {
  vol: Volume;
  alloc: FsAllocators;
  extentTree(inodeBlkno: number): FsExtentTree;
}

export function quotaTypes(vol: Volume): QuotaType[] {
  const out: QuotaType[] = [];
  if (vol.sb.roCompat & OCFS2_FEATURE_RO_COMPAT_USRQUOTA) out.push(USRQUOTA);
  if (vol.sb.roCompat & OCFS2_FEATURE_RO_COMPAT_GRPQUOTA) out.push(GRPQUOTA);
  return out;
}

function emptyDquot(id: number): Dquot {
  return { id, useCount: 0, bhardlimit: 0n, bsoftlimit: 0n, curspace: 0n, btime: 0n, ihardlimit: 0n, isoftlimit: 0n, curinodes: 0n, itime: 0n };
}

function decodeDquot(buf: Buffer, off: number): Dquot {
  const d = GlobalDiskDqblk.decode(buf, off);
  return {
    id: d.dqb_id, useCount: d.dqb_use_count,
    bhardlimit: d.dqb_bhardlimit, bsoftlimit: d.dqb_bsoftlimit, curspace: d.dqb_curspace, btime: d.dqb_btime,
    ihardlimit: d.dqb_ihardlimit, isoftlimit: d.dqb_isoftlimit, curinodes: d.dqb_curinodes, itime: d.dqb_itime,
  };
}

function encodeDquot(q: Dquot, buf: Buffer, off: number): void {
  GlobalDiskDqblk.encode({
    dqb_id: q.id >>> 0, dqb_use_count: q.useCount, dqb_ihardlimit: q.ihardlimit, dqb_isoftlimit: q.isoftlimit,
    dqb_curinodes: q.curinodes, dqb_bhardlimit: q.bhardlimit, dqb_bsoftlimit: q.bsoftlimit, dqb_curspace: q.curspace,
    dqb_btime: q.btime, dqb_itime: q.itime, dqb_pad1: 0n, dqb_pad2: 0n,
  }, buf, off);
  // qtree_entry_unused is "all zeroes": an id-0 entry with nothing in it must still look used
  // (v2_mem2diskdqb sets dqb_itime to 1 for the same reason).
  if (entryUnused(buf, off)) buf.writeBigUInt64LE(1n, off + GlobalDiskDqblk.offsetOf('dqb_itime'));
}

function entryUnused(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + GlobalDiskDqblk.size; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The logical-to-physical block map of a quota file and its inode. */
class QuotaFileMap {
  private constructor(readonly inode: number, private readonly blocks: number[], readonly clusters: number, readonly size: number) {}

  static async load(vol: Volume, inode: number): Promise<QuotaFileMap> {
    const ino = await vol.readInode(inode);
    const exts = await allLeafExtents(vol, inodeExtentList(ino.buf, inode), inode);
    const blocks: number[] = [];
    for (const e of [...exts].sort((a, b) => a.cpos - b.cpos)) {
      for (let i = 0; i < e.clusters * vol.clusterBlocks; i++) blocks[e.cpos * vol.clusterBlocks + i] = e.blkno + i;
    }
    return new QuotaFileMap(inode, blocks, ino.inode.clusters, Number(ino.inode.size));
  }

  phys(block: number): number {
    const p = this.blocks[block];
    if (p === undefined) throw new Ocfs2CorruptError(this.inode, 'quota file block is not mapped', `file block ${block}`);
    return p;
  }

  get allocatedBlocks(): number { return this.blocks.length; }
}

/**
 * One global quota file within one transaction (or read-only without one).
 * Nothing is cached across transactions: an aborted transaction leaves no
 * stale state behind.
 */
export class GlobalQuotaFile {
  private info!: QuotaInfo;
  private infoDirty = false;
  private readonly g: QtreeGeometry;

  private constructor(readonly vol: Volume, readonly type: QuotaType, private map: QuotaFileMap) {
    this.g = qtreeGeometry(vol.blockSize);
  }

  static async open(vol: Volume, type: QuotaType): Promise<GlobalQuotaFile> {
    const inode = vol.systemFile(systemFileName(type === USRQUOTA ? USER_QUOTA_SYSTEM_INODE : GROUP_QUOTA_SYSTEM_INODE));
    const f = new GlobalQuotaFile(vol, type, await QuotaFileMap.load(vol, inode));
    const b0 = await f.readBlock(0);
    const h = DiskDqHeader.decode(b0, 0);
    if (h.dqh_magic !== OCFS2_GLOBAL_QMAGICS[type]) {
      throw new Ocfs2CorruptError(f.map.phys(0), `global ${QUOTA_TYPE_NAMES[type]} quota file magic mismatch`, `found 0x${h.dqh_magic.toString(16)}`);
    }
    const i = GlobalDiskDqinfo.decode(b0, QUOTA_INFO_OFFSET);
    f.info = { bgrace: i.dqi_bgrace, igrace: i.dqi_igrace, syncms: i.dqi_syncms, blocks: i.dqi_blocks, freeBlk: i.dqi_free_blk, freeEntry: i.dqi_free_entry };
    return f;
  }

  get quotaInfo(): Readonly<QuotaInfo> { return this.info; }

  /** The latest content of a file block (shared: copy before changing). */
  private async readBlock(block: number): Promise<Buffer> {
    return this.vol.readMetaBlock(this.map.phys(block), quotaCheckOffset(this.vol.blockSize));
  }

  private async copyBlock(block: number): Promise<Buffer> { return Buffer.from(await this.readBlock(block)); }

  private writeBlock(tx: Transaction, block: number, buf: Buffer): void {
    tx.writeMeta(this.map.phys(block), buf, quotaCheckOffset(this.vol.blockSize));
  }

  private checkRef(blk: number, from: number): number {
    if (blk < QT_TREEOFF || blk >= this.info.blocks) {
      throw new Ocfs2CorruptError(this.map.phys(from), `${QUOTA_TYPE_NAMES[this.type]} quota tree reference out of range`, `block ${blk} of ${this.info.blocks}`);
    }
    return blk;
  }

  /** find_tree_dqentry + find_block_dqentry: the file offset of id's entry, or 0. */
  async find(id: number): Promise<{ block: number; offset: number } | undefined> {
    let blk = QT_TREEOFF;
    for (let depth = 0; depth < this.g.depth; depth++) {
      const b = await this.readBlock(blk);
      const ref = b.readUInt32LE(qtreeIndex(this.g, id, depth) * 4);
      if (ref === 0) return undefined;
      blk = this.checkRef(ref, blk);
    }
    const leaf = await this.readBlock(blk);
    for (let i = 0; i < this.g.entriesPerLeaf; i++) {
      const off = DiskDqdbHeader.size + i * GlobalDiskDqblk.size;
      if (!entryUnused(leaf, off) && leaf.readUInt32LE(off) === id >>> 0) return { block: blk, offset: off };
    }
    throw new Ocfs2CorruptError(this.map.phys(blk), `${QUOTA_TYPE_NAMES[this.type]} quota id not found in its leaf block`, `id ${id}`);
  }

  async get(id: number): Promise<Dquot | undefined> {
    const at = await this.find(id);
    if (!at) return undefined;
    return decodeDquot(await this.readBlock(at.block), at.offset);
  }

  /** Every entry of the tree, by id. */
  async all(): Promise<Dquot[]> {
    const out = new Map<number, Dquot>();
    const seen = new Set<number>();
    const walk = async (blk: number, depth: number): Promise<void> => {
      const b = Buffer.from(await this.readBlock(blk));
      if (depth === this.g.depth) {
        if (seen.has(blk)) return;
        seen.add(blk);
        for (let i = 0; i < this.g.entriesPerLeaf; i++) {
          const off = DiskDqdbHeader.size + i * GlobalDiskDqblk.size;
          if (!entryUnused(b, off)) { const q = decodeDquot(b, off); out.set(q.id, q); }
        }
        return;
      }
      for (let i = 0; i < this.g.epb; i++) {
        const ref = b.readUInt32LE(i * 4);
        if (ref) await walk(this.checkRef(ref, blk), depth + 1);
      }
    };
    await walk(QT_TREEOFF, 0);
    return [...out.values()].sort((a, b) => a.id - b.id);
  }

  /** Write (creating if needed) id's entry. */
  async put(tx: Transaction, io: QuotaIo, q: Dquot): Promise<void> {
    let at = await this.find(q.id);
    if (!at) at = await this.insert(tx, io, q.id);
    const b = await this.copyBlock(at.block);
    encodeDquot(q, b, at.offset);
    this.writeBlock(tx, at.block, b);
    await this.flushInfo(tx);
  }

  private async flushInfo(tx: Transaction): Promise<void> {
    if (!this.infoDirty) return;
    const b0 = await this.copyBlock(0);
    GlobalDiskDqinfo.encode({
      dqi_bgrace: this.info.bgrace, dqi_igrace: this.info.igrace, dqi_syncms: this.info.syncms, dqi_blocks: this.info.blocks,
      dqi_free_blk: this.info.freeBlk, dqi_free_entry: this.info.freeEntry,
    }, b0, QUOTA_INFO_OFFSET);
    this.writeBlock(tx, 0, b0);
    this.infoDirty = false;
  }

  /** Set the grace periods (seconds). */
  async setGrace(tx: Transaction, bgrace: number, igrace: number): Promise<void> {
    this.info.bgrace = bgrace; this.info.igrace = igrace; this.infoDirty = true;
    await this.flushInfo(tx);
  }

  /** get_free_dqblk: a block from the free list, else a new one at the end (the file grows a cluster when full). */
  private async getFreeBlock(tx: Transaction, io: QuotaIo): Promise<number> {
    if (this.info.freeBlk) {
      const blk = this.checkRef(this.info.freeBlk, 0);
      this.info.freeBlk = DiskDqdbHeader.decode(await this.readBlock(blk), 0).dqdh_next_free;
      this.infoDirty = true;
      return blk;
    }
    const blk = this.info.blocks;
    if (blk >= this.map.allocatedBlocks) {
      // ocfs2_quota_write -> ocfs2_extend_no_holes: one more cluster for the file.
      const run = await io.alloc.claimClusters(tx, 1, 1);
      const cpos = this.map.clusters;
      await io.extentTree(this.map.inode).insert(tx, { cpos, clusters: 1, blkno: run.start * this.vol.clusterBlocks, flags: 0 });
      await this.patchInode(tx, (h) => { h.i_clusters = cpos + 1; });
      this.map = await QuotaFileMap.load(this.vol, this.map.inode);
    }
    this.info.blocks = blk + 1;
    this.infoDirty = true;
    await this.patchInode(tx, (h) => { h.i_size = Math.max(h.i_size, this.info.blocks * this.vol.blockSize); });
    this.map = await QuotaFileMap.load(this.vol, this.map.inode);
    // A fresh block: written whole before anything reads it.
    this.writeBlock(tx, blk, Buffer.alloc(this.vol.blockSize));
    return blk;
  }

  private async patchInode(tx: Transaction, fn: (h: ReturnType<typeof DinodeHeader.decode>) => void): Promise<void> {
    const buf = Buffer.from((await this.vol.readInode(this.map.inode)).buf);
    const h = DinodeHeader.decode(buf, 0);
    fn(h);
    DinodeHeader.encode(h, buf, 0);
    tx.writeMeta(this.map.inode, buf, CHECK_OFFSET.dinode);
  }

  /** remove_free_dqentry: unlink a full leaf from the free-entry list. */
  private async removeFreeEntry(tx: Transaction, blk: number, leaf: Buffer): Promise<void> {
    const h = DiskDqdbHeader.decode(leaf, 0);
    if (h.dqdh_next_free) {
      const n = await this.copyBlock(h.dqdh_next_free);
      n.writeUInt32LE(h.dqdh_prev_free, DiskDqdbHeader.offsetOf('dqdh_prev_free'));
      this.writeBlock(tx, h.dqdh_next_free, n);
    }
    if (h.dqdh_prev_free) {
      const p = await this.copyBlock(h.dqdh_prev_free);
      p.writeUInt32LE(h.dqdh_next_free, DiskDqdbHeader.offsetOf('dqdh_next_free'));
      this.writeBlock(tx, h.dqdh_prev_free, p);
    } else {
      this.info.freeEntry = h.dqdh_next_free;
      this.infoDirty = true;
    }
    DiskDqdbHeader.encode({ ...h, dqdh_next_free: 0, dqdh_prev_free: 0 }, leaf, 0);
  }

  /** find_free_dqentry: a free slot in a leaf with room (or a new leaf). */
  private async findFreeEntry(tx: Transaction, io: QuotaIo): Promise<{ block: number; offset: number }> {
    let blk: number;
    let leaf: Buffer;
    if (this.info.freeEntry) {
      blk = this.checkRef(this.info.freeEntry, 0);
      leaf = await this.copyBlock(blk);
    } else {
      blk = await this.getFreeBlock(tx, io);
      leaf = Buffer.alloc(this.vol.blockSize);
      this.info.freeEntry = blk;
      this.infoDirty = true;
    }
    const h = DiskDqdbHeader.decode(leaf, 0);
    // Block will be full: off the list of blocks with free entries.
    if (h.dqdh_entries + 1 >= this.g.entriesPerLeaf) await this.removeFreeEntry(tx, blk, leaf);
    const h2 = DiskDqdbHeader.decode(leaf, 0);
    h2.dqdh_entries++;
    DiskDqdbHeader.encode(h2, leaf, 0);
    for (let i = 0; i < this.g.entriesPerLeaf; i++) {
      const off = DiskDqdbHeader.size + i * GlobalDiskDqblk.size;
      if (entryUnused(leaf, off)) {
        this.writeBlock(tx, blk, leaf);
        return { block: blk, offset: off };
      }
    }
    throw new Ocfs2CorruptError(this.map.phys(blk), `${QUOTA_TYPE_NAMES[this.type]} quota leaf on the free-entry list is full`);
  }

  /** dq_insert_tree / do_insert_tree: new tree blocks down to a leaf entry for `id`. */
  private async insert(tx: Transaction, io: QuotaIo, id: number): Promise<{ block: number; offset: number }> {
    let blk = QT_TREEOFF;
    for (let depth = 0; depth < this.g.depth; depth++) {
      const b = await this.copyBlock(blk);
      const idx = qtreeIndex(this.g, id, depth);
      const ref = b.readUInt32LE(idx * 4);
      if (depth === this.g.depth - 1) {
        if (ref) throw new Ocfs2CorruptError(this.map.phys(blk), `${QUOTA_TYPE_NAMES[this.type]} quota tree already references a leaf for a new id`, `id ${id}`);
        const at = await this.findFreeEntry(tx, io);
        const b2 = await this.copyBlock(blk);
        b2.writeUInt32LE(at.block, idx * 4);
        this.writeBlock(tx, blk, b2);
        return at;
      }
      if (ref) { blk = this.checkRef(ref, blk); continue; }
      const nb = await this.getFreeBlock(tx, io);
      const b2 = await this.copyBlock(blk);
      b2.writeUInt32LE(nb, idx * 4);
      this.writeBlock(tx, blk, b2);
      blk = nb;
    }
    throw new Error('unreachable');
  }
}

/** The usage an inode block stands for (ocfs2_compute_quota_usage's rules), or null. */
export interface InodeCharge { uid: number; gid: number; space: bigint; inodes: bigint }

export function inodeCharge(vol: Volume, blkno: number, buf: Buffer | undefined): InodeCharge | null {
  if (!buf || !hasSignature(buf, 0, OCFS2_INODE_SIGNATURE)) return null;
  const h = DinodeHeader.decode(buf, 0);
  if (h.i_fs_generation >>> 0 !== vol.sb.fsGeneration >>> 0) return null;
  if (!(h.i_flags & OCFS2_VALID_FL)) return null;
  if ((h.i_flags & OCFS2_SYSTEM_FL) && blkno !== vol.rootBlkno) return null;
  return { uid: h.i_uid >>> 0, gid: h.i_gid >>> 0, space: BigInt(h.i_clusters) * BigInt(vol.clusterSize), inodes: 1n };
}

interface Delta { space: bigint; inodes: bigint }

/** Seconds since the epoch, as the kernel's ktime_get_real_seconds. */
const nowSec = (): bigint => BigInt(Math.floor(Date.now() / 1000));

/**
 * check_idq / check_bdq (dquot.c): may `q` take `d` more?  Sets a grace
 * deadline when a soft limit is first exceeded; throws EDQUOT past a hard
 * limit or an expired grace period.  Decreases reset the deadline when
 * usage is back under the soft limit (dquot_decr_space / dquot_decr_inodes).
 */
export function chargeDquot(q: Dquot, d: Delta, grace: { bgrace: number; igrace: number }, now = nowSec()): void {
  const ni = q.curinodes + d.inodes;
  const ns = q.curspace + d.space;
  if (d.inodes > 0n) {
    if (q.ihardlimit && ni > q.ihardlimit) throw new PosixError('EDQUOT', `inode hard limit of id ${q.id} reached`);
    if (q.isoftlimit && ni > q.isoftlimit) {
      if (q.itime && now >= q.itime) throw new PosixError('EDQUOT', `inode grace period of id ${q.id} expired`);
      if (!q.itime) q.itime = now + BigInt(grace.igrace);
    }
  }
  if (d.space > 0n) {
    if (q.bhardlimit && ns > q.bhardlimit) throw new PosixError('EDQUOT', `space hard limit of id ${q.id} reached`);
    if (q.bsoftlimit && ns > q.bsoftlimit) {
      if (q.btime && now >= q.btime) throw new PosixError('EDQUOT', `space grace period of id ${q.id} expired`);
      if (!q.btime) q.btime = now + BigInt(grace.bgrace);
    }
  }
  q.curinodes = ni < 0n ? 0n : ni;
  q.curspace = ns < 0n ? 0n : ns;
  if (!q.isoftlimit || q.curinodes <= q.isoftlimit) q.itime = 0n;
  if (!q.bsoftlimit || q.curspace <= q.bsoftlimit) q.btime = 0n;
}

/** do_set_dqblk: new limits; grace deadlines follow the new soft limits. */
export function setDquotLimits(q: Dquot, l: QuotaLimits, grace: { bgrace: number; igrace: number }, now = nowSec()): void {
  if (l.bsoftlimit !== undefined) q.bsoftlimit = l.bsoftlimit;
  if (l.bhardlimit !== undefined) q.bhardlimit = l.bhardlimit;
  if (l.isoftlimit !== undefined) q.isoftlimit = l.isoftlimit;
  if (l.ihardlimit !== undefined) q.ihardlimit = l.ihardlimit;
  if (!q.bsoftlimit || q.curspace <= q.bsoftlimit) q.btime = 0n;
  else if (!q.btime) q.btime = now + BigInt(grace.bgrace);
  if (!q.isoftlimit || q.curinodes <= q.isoftlimit) q.itime = 0n;
  else if (!q.itime) q.itime = now + BigInt(grace.igrace);
}

/** Apply per-id deltas to the global files, checking limits on increases. */
export async function applyQuotaDeltas(tx: Transaction, io: QuotaIo, deltas: Map<QuotaType, Map<number, Delta>>): Promise<void> {
  for (const [type, byId] of deltas) {
    const f = await GlobalQuotaFile.open(io.vol, type);
    for (const [id, d] of [...byId].sort((a, b) => a[0] - b[0])) {
      if (d.space === 0n && d.inodes === 0n) continue;
      const q = (await f.get(id)) ?? emptyDquot(id);
      chargeDquot(q, d, f.quotaInfo);
      await f.put(tx, io, q);
    }
  }
}

/**
 * Wraps one filesystem transaction: every inode block it writes is compared
 * before/after and the difference charged (see the file comment).
 */
export class QuotaTracker {
  readonly types: QuotaType[];

  constructor(private readonly io: QuotaIo) {
    this.types = quotaTypes(io.vol);
  }

  get enabled(): boolean { return this.types.length > 0; }

  async run<T>(tx: Transaction, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (!this.enabled) return fn(tx);
    const vol = this.io.vol;
    const before = new Map<number, Buffer | 'disk'>();
    const after = new Map<number, Buffer | undefined>();
    const wrapped: Transaction = {
      writeMeta(blkno, buf, checkOffset) {
        if (checkOffset === CHECK_OFFSET.dinode && !before.has(blkno)) {
          const old = vol.dev.peek(blkno);
          before.set(blkno, old ? Buffer.from(old) : 'disk');
        }
        if (checkOffset === CHECK_OFFSET.dinode) after.set(blkno, buf);
        tx.writeMeta(blkno, buf, checkOffset);
      },
      writeData: (blkno, data) => tx.writeData(blkno, data),
      forget(blkno) { if (after.has(blkno)) after.set(blkno, undefined); tx.forget(blkno); },
      get metaBlocks() { return tx.metaBlocks; },
    };
    const out = await fn(wrapped);
    const deltas = new Map<QuotaType, Map<number, Delta>>();
    const add = (type: QuotaType, id: number, space: bigint, inodes: bigint): void => {
      if (!this.types.includes(type)) return;
      let m = deltas.get(type);
      if (!m) deltas.set(type, (m = new Map()));
      const d = m.get(id) ?? { space: 0n, inodes: 0n };
      d.space += space; d.inodes += inodes;
      m.set(id, d);
    };
    for (const [blkno, oldRef] of before) {
      // Not in the cache before its first write: the disk held the latest committed content.
      const old = oldRef === 'disk' ? await vol.dev.readAt(blkno * vol.blockSize, vol.blockSize) : oldRef;
      const was = inodeCharge(vol, blkno, old);
      const now = inodeCharge(vol, blkno, after.get(blkno));
      if (was) { add(USRQUOTA, was.uid, -was.space, -was.inodes); add(GRPQUOTA, was.gid, -was.space, -was.inodes); }
      if (now) { add(USRQUOTA, now.uid, now.space, now.inodes); add(GRPQUOTA, now.gid, now.space, now.inodes); }
    }
    await applyQuotaDeltas(tx, this.io, deltas);
    return out;
  }
}

/* ---- local quota files ------------------------------------------------------ */

function localQuotaInode(vol: Volume, type: QuotaType, slot: number): number {
  return vol.systemFile(systemFileName(type === USRQUOTA ? LOCAL_USER_QUOTA_SYSTEM_INODE : LOCAL_GROUP_QUOTA_SYSTEM_INODE, slot));
}

export interface LocalQuotaState { type: QuotaType; slot: number; clean: boolean; chunks: number; blocks: number; entries: number }

/** The state of a slot's local quota file (header, info, entries in use). */
export async function readLocalQuota(vol: Volume, type: QuotaType, slot: number): Promise<LocalQuotaState> {
  const map = await QuotaFileMap.load(vol, localQuotaInode(vol, type, slot));
  const co = quotaCheckOffset(vol.blockSize);
  const b0 = await vol.readMetaBlock(map.phys(0), co);
  const h = DiskDqHeader.decode(b0, 0);
  if (h.dqh_magic !== OCFS2_LOCAL_QMAGICS[type]) {
    throw new Ocfs2CorruptError(map.phys(0), `local ${QUOTA_TYPE_NAMES[type]} quota file magic mismatch`, `found 0x${h.dqh_magic.toString(16)}`);
  }
  const info = LocalDiskDqinfo.decode(b0, QUOTA_INFO_OFFSET);
  const g = localQuotaGeometry(vol.blockSize);
  let entries = 0;
  for (let c = 0; c < info.dqi_chunks && localChunkBlock(g, c) < info.dqi_blocks; c++) {
    const ch = await vol.readMetaBlock(map.phys(localChunkBlock(g, c)), co);
    entries += g.chunkEntries - LocalDiskChunk.decode(ch, 0).dqc_free;
  }
  return { type, slot, clean: (info.dqi_flags & OLQF_CLEAN) !== 0, chunks: info.dqi_chunks, blocks: info.dqi_blocks, entries };
}

/**
 * ocfs2_recover_local_quota_file + the info update of ocfs2_local_read_info /
 * ocfs2_local_free_info: when the file is not clean (its node died with it in
 * use), every local dquot in a chunk bitmap is added to the global file and
 * released (bit cleared, dqc_free up).  Then the file is marked clean or in
 * use (`clean`).  Returns the number of entries merged.
 */
export async function recoverLocalQuota(tx: Transaction, io: QuotaIo, type: QuotaType, slot: number, clean: boolean): Promise<number> {
  const vol = io.vol;
  const map = await QuotaFileMap.load(vol, localQuotaInode(vol, type, slot));
  const co = quotaCheckOffset(vol.blockSize);
  const b0 = Buffer.from(await vol.readMetaBlock(map.phys(0), co));
  const info = LocalDiskDqinfo.decode(b0, QUOTA_INFO_OFFSET);
  let merged = 0;
  if (!(info.dqi_flags & OLQF_CLEAN)) {
    const g = localQuotaGeometry(vol.blockSize);
    const deltas = new Map<number, Delta>();
    for (let c = 0; c < info.dqi_chunks && localChunkBlock(g, c) < info.dqi_blocks; c++) {
      const cblk = map.phys(localChunkBlock(g, c));
      const ch = Buffer.from(await vol.readMetaBlock(cblk, co));
      const bitmap = ch.subarray(LocalDiskChunk.size, co);
      let freed = 0;
      for (let bit = 0; bit < g.chunkEntries; bit++) {
        if (!testBit(bitmap, bit)) continue;
        const at = localDqblkLocation(g, c, bit);
        const eb = await vol.readMetaBlock(map.phys(at.block), co);
        const e = LocalDiskDqblk.decode(eb, at.offset);
        const id = Number(e.dqb_id);
        const d = deltas.get(id) ?? { space: 0n, inodes: 0n };
        d.space += BigInt.asIntN(64, e.dqb_spacemod);
        d.inodes += BigInt.asIntN(64, e.dqb_inodemod);
        deltas.set(id, d);
        clearBit(bitmap, bit);
        freed++;
      }
      if (freed) {
        LocalDiskChunk.encode({ dqc_free: LocalDiskChunk.decode(ch, 0).dqc_free + freed }, ch, 0);
        tx.writeMeta(cblk, ch, co);
        merged += freed;
      }
    }
    // Recovery merges what the dead node had not synced yet: no limit stops it (usage already exists on disk).
    const f = await GlobalQuotaFile.open(vol, type);
    for (const [id, d] of deltas) {
      const q = (await f.get(id)) ?? emptyDquot(id);
      q.curspace = q.curspace + d.space < 0n ? 0n : q.curspace + d.space;
      q.curinodes = q.curinodes + d.inodes < 0n ? 0n : q.curinodes + d.inodes;
      await f.put(tx, io, q);
    }
  }
  const flags = clean ? info.dqi_flags | OLQF_CLEAN : info.dqi_flags & ~OLQF_CLEAN;
  if (flags !== info.dqi_flags) {
    LocalDiskDqinfo.encode({ ...info, dqi_flags: flags }, b0, QUOTA_INFO_OFFSET);
    tx.writeMeta(map.phys(0), b0, co);
  }
  return merged;
}

/* ---- reading and setting, for the tools ------------------------------------- */

export async function quotaReport(vol: Volume, type: QuotaType): Promise<{ info: QuotaInfo; dquots: Dquot[] }> {
  const f = await GlobalQuotaFile.open(vol, type);
  return { info: { ...f.quotaInfo }, dquots: await f.all() };
}

export async function setQuotaLimits(tx: Transaction, io: QuotaIo, type: QuotaType, id: number, l: QuotaLimits): Promise<Dquot> {
  const f = await GlobalQuotaFile.open(io.vol, type);
  const q = (await f.get(id)) ?? emptyDquot(id);
  setDquotLimits(q, l, f.quotaInfo);
  await f.put(tx, io, q);
  return q;
}

export async function setQuotaGrace(tx: Transaction, vol: Volume, type: QuotaType, bgrace: number, igrace: number): Promise<void> {
  const f = await GlobalQuotaFile.open(vol, type);
  await f.setGrace(tx, bgrace, igrace);
}
