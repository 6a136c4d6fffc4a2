/**
 * An offline tunefs session on one volume (tunefs.ocfs2's tunefs_open):
 * refuses a volume that is mounted, heartbeating, or has a dirty journal,
 * then opens it read-write with in-place metadata writes
 * (DirectTransactionManager) and allocation straight from the global bitmap
 * (Allocators offline mode, libocfs2's behaviour).
 *
 * The superblock is changed through `writeSuper`, which writes the primary
 * and every backup (libocfs2 ocfs2_write_super + ocfs2_refresh_backup_supers:
 * each backup is the primary with its own i_blkno).
 */
import { Volume } from '../volume';
import { Ocfs2Error } from '../errors';
import { DirectTransactionManager } from '../txn';
import { Allocators } from '../alloc';
import { ExtentTree } from '../extenttree';
import { CHECK_OFFSET, updateBlockCheck } from '../blockcheck';
import { OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_SUPER_BLOCK_BLKNO } from '../constants';
import { DinodeHeader, type DinodeHeaderT } from '../structs/dinode';
import { SuperBlock, SUPERBLOCK_OFFSET, backupSuperblockBlknos, type SuperBlockT } from '../structs/superblock';
import { mountedAs } from '../mkfs/format';
import { liveHeartbeatNodes } from '../rwmount';
import type { RwVolumeLike } from '../fs/types';

export class TunefsError extends Ocfs2Error {}

export interface TunefsOpenOptions {
  /** How long to watch the heartbeat area for live nodes (default 2200 ms, a bit over o2hb's region timeout). */
  heartbeatIntervalMs?: number;
  /** Skip the mounted/heartbeat checks (tests of the operations alone). */
  skipAccessCheck?: boolean;
  cacheBytes?: number;
}

/** Refuse a volume in use: mounted here, heartbeating anywhere, or with a journal needing recovery. */
export async function checkOfflineAccess(devPath: string, opts: TunefsOpenOptions = {}): Promise<void> {
  const m = mountedAs(devPath);
  if (m) throw new TunefsError(`${devPath} is mounted (${m}); tunefs works on unmounted volumes only`);
  const peek = await Volume.open(devPath, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
  try {
    if (!peek.localMount) {
      const live = await liveHeartbeatNodes(devPath, opts.heartbeatIntervalMs ?? 2200);
      if (live.length) {
        throw new TunefsError(`${devPath} has live heartbeat from node(s) ${live.join(', ')}: it is in use in the cluster`);
      }
    }
    // tunefs_journal_check: TUNEFS_ET_JOURNAL_DIRTY.
    const dirty = (await peek.journalStates()).filter((j) => j.dirty).map((j) => j.slot);
    if (dirty.length) {
      throw new TunefsError(`the journal of slot(s) ${dirty.join(', ')} is dirty: run fsck.ocfs2 (or check -y) to replay it first`);
    }
  } finally {
    await peek.close();
  }
}

export class TuneSession {
  private constructor(
    readonly devPath: string,
    readonly vol: Volume,
    readonly rv: RwVolumeLike & { alloc: Allocators },
  ) {}

  static async open(devPath: string, opts: TunefsOpenOptions = {}): Promise<TuneSession> {
    if (!opts.skipAccessCheck) await checkOfflineAccess(devPath, opts);
    const vol = await Volume.open(devPath, { readOnly: false, cacheBytes: opts.cacheBytes });
    try {
      const tm = new DirectTransactionManager(vol);
      const alloc = await Allocators.load(vol, 0, { offline: true });
      const rv = { vol, slot: 0, tm, alloc, extentTree: (ino: number) => ExtentTree.forInode(vol, alloc, ino) };
      return new TuneSession(devPath, vol, rv);
    } catch (e) {
      await vol.close().catch(() => undefined);
      throw e;
    }
  }

  /** The superblock as it is on disk now (header and fields, private copies). */
  async readSuper(): Promise<{ buf: Buffer; h: DinodeHeaderT; sb: SuperBlockT }> {
    const buf = Buffer.from(await this.vol.dev.readBlocks(OCFS2_SUPER_BLOCK_BLKNO, 1));
    return { buf, h: DinodeHeader.decode(buf, 0), sb: SuperBlock.decode(buf, SUPERBLOCK_OFFSET) };
  }

  /**
   * Change the superblock and write it everywhere: the primary, then every
   * backup inside the volume when backup-super is on (ocfs2_write_super).
   */
  async writeSuper(change: (sb: SuperBlockT, h: DinodeHeaderT) => void): Promise<void> {
    await this.rv.tm.flush();
    const { buf, h, sb } = await this.readSuper();
    change(sb, h);
    DinodeHeader.encode(h, buf, 0);
    SuperBlock.encode(sb, buf, SUPERBLOCK_OFFSET);
    const ecc = (b: Buffer): void => { if (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) updateBlockCheck(b, CHECK_OFFSET.dinode); };
    ecc(buf);
    await this.vol.dev.writeBlocks(OCFS2_SUPER_BLOCK_BLKNO, buf);
    if (sb.s_feature_compat & OCFS2_FEATURE_COMPAT_BACKUP_SB) {
      const blocks = h.i_clusters * (this.vol.clusterSize / this.vol.blockSize);
      for (const b of backupSuperblockBlknos(this.vol.blockSize, blocks)) {
        const copy = Buffer.from(buf);
        copy.writeBigUInt64LE(BigInt(b), DinodeHeader.offsetOf('i_blkno'));
        ecc(copy);
        await this.vol.dev.writeBlocks(b, copy);
      }
    }
    await this.vol.dev.flush();
  }

  async close(): Promise<void> {
    await this.rv.tm.flush();
    await this.vol.close();
  }
}
