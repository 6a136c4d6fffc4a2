/**
 * Read-write mount of one node (issue 4: one node at a time).
 *
 *   const rv = await openReadWrite(devPath, { slot?, node?, journal?, cacheBytes?, warn? });
 *   await rv.tm.run(async (tx) => { ... });   // journaled (JournaledTransactionManager)
 *   await rv.close();                          // clean unmount
 *
 * Mount, as ocfs2_fill_super / ocfs2_check_volume / ocfs2_complete_mount_recovery:
 *  1. refuse features we cannot write (Volume.open's checks, plus the
 *     ro-compat quota features and heartbeat devices);
 *  2. cluster-mode volumes: refuse if the o2hb area shows another live node
 *     (every slot read twice, a heartbeat interval apart);
 *  3. every dirty journal is replayed to disk (Volume.open read-write);
 *  4. take a slot in the slot map (the one already holding our node number,
 *     else the preferred one, else the first free), written in place;
 *  5. mark our journal dinode dirty (metaecc updated), start the journal;
 *  6. finish recovery of every replayed slot in journaled transactions: local
 *     alloc window and truncate log back to the global bitmap; then clear
 *     the other slots' dirty flags and slot map entries.  Orphan directories
 *     of those slots are left to the filesystem layer (`orphanSlots`).
 * Unmount (close): truncate log flushed and local alloc released through
 * the Allocators, journal committed + checkpointed + marked empty, dirty
 * flag cleared, slot released.
 */
import { Volume } from './volume';
import { Ocfs2Error, Ocfs2UnsupportedError, PosixError } from './errors';
import {
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_FEATURE_RO_COMPAT_USRQUOTA,
  OCFS2_FEATURE_RO_COMPAT_GRPQUOTA,
} from './constants';
import { DirectTransactionManager, type TransactionManager } from './txn';
import { Allocators } from './alloc';
import { JournaledTransactionManager, recoverSlotAllocState, setJournalDinodeFlags, type JournalManagerOptions } from './journal';
import { JOURNAL_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, systemFileName } from './sysfiles';
import { decodeSlotMap, encodeSlotMap, slotOfNode, slotMapBytes, type SlotMap } from './structs/slotmap';
import { inodeExtentList } from './structs/dinode';
import { allLeafExtents } from './extentmap';
import { O2hbDiskHeartbeatBlock, verifyO2hbBlock } from './structs/heartbeat';
import { locateHeartbeatArea } from '../cluster/heartbeat/locate';
import { loadDirectIo } from '../native/directio';

export interface RwVolume {
  vol: Volume;
  slot: number;
  /** Our node number (0 for local-mount volumes). */
  node: number;
  tm: TransactionManager;
  alloc: Allocators;
  /** The journal, when journaling (default). */
  journal: JournaledTransactionManager | null;
  /** Slots recovered at mount whose orphan directories still need processing (ours included when it was dirty). */
  orphanSlots: number[];
  /** Clean unmount: flush, checkpoint, release local alloc & truncate log, clear slot + journal dirty flag. */
  close(): Promise<void>;
}

export interface OpenReadWriteOptions {
  cacheBytes?: number;
  /** Preferred slot (the kernel's preferred_slot mount option). */
  slot?: number;
  /** Our node number in cluster mode (default 0); local-mount volumes always use 0. */
  node?: number;
  /** Journal metadata changes (default true); false writes in place (no crash safety). */
  journal?: boolean;
  warn?: (m: string) => void;
  /** How long to watch the heartbeat area for other live nodes (default 2.2 s, a bit over O2HB_REGION_TIMEOUT_MS). */
  heartbeatWaitMs?: number;
  /** Options of the journal (commit interval etc.). */
  journalOptions?: JournalManagerOptions;
}

/**
 * A one-shot look at a volume's heartbeat area without joining: read every
 * slot twice, `waitMs` apart (O_DIRECT: another host's writes, or another
 * loop device's, never reach our page cache), and return the slots with a
 * valid checksum, a non-zero generation (generation 0 is the block a node
 * writes when it stops cleanly) and a sequence that moved.
 */
export async function liveHeartbeatNodes(devPath: string, waitMs: number): Promise<number[]> {
  const area = locateHeartbeatArea(devPath);
  const io = loadDirectIo();
  const fd = io.open(devPath, false);
  try {
    const bytes = area.blocks * area.blockBytes;
    const len = Math.ceil(bytes / 512) * 512;
    const off = area.startBlock * area.blockBytes;
    const read = async (): Promise<Buffer> => { const b = Buffer.alloc(len); await io.pread(fd, b, off); return b; };
    const a = await read();
    await new Promise((r) => setTimeout(r, waitMs));
    const b = await read();
    const out: number[] = [];
    for (let n = 0; n < area.blocks; n++) {
      const sa = a.subarray(n * area.blockBytes, (n + 1) * area.blockBytes);
      const sb = b.subarray(n * area.blockBytes, (n + 1) * area.blockBytes);
      if (!verifyO2hbBlock(sb, area.blockBytes)) continue;
      const db = O2hbDiskHeartbeatBlock.decode(sb);
      if (db.hb_generation === 0n) continue;
      const moved = !verifyO2hbBlock(sa, area.blockBytes) || O2hbDiskHeartbeatBlock.decode(sa).hb_seq !== db.hb_seq;
      if (moved) out.push(n);
    }
    return out;
  } finally {
    io.close(fd);
  }
}

/** The slot map file: its blocks and decoded contents. */
class SlotMapFile {
  private constructor(private readonly vol: Volume, private readonly blocks: number[], private readonly extended: boolean) {}

  static async open(vol: Volume): Promise<SlotMapFile> {
    const blkno = vol.systemFile(systemFileName(SLOT_MAP_SYSTEM_INODE));
    const ino = await vol.readInode(blkno);
    const ext = await allLeafExtents(vol, inodeExtentList(ino.buf, blkno), blkno);
    const need = Math.ceil(slotMapBytes(vol.maxSlots, vol.extendedSlotMap) / vol.blockSize);
    const blocks: number[] = [];
    for (const e of [...ext].sort((x, y) => x.cpos - y.cpos)) {
      for (let i = 0; i < e.clusters * vol.clusterBlocks && blocks.length < need; i++) blocks.push(e.blkno + i);
    }
    if (blocks.length < need) throw new Ocfs2Error(`slot map file too small: ${blocks.length} blocks, need ${need}`);
    return new SlotMapFile(vol, blocks, vol.extendedSlotMap);
  }

  async read(): Promise<SlotMap> {
    const parts = await Promise.all(this.blocks.map((b) => this.vol.dev.readBlocks(b, 1)));
    return decodeSlotMap(Buffer.concat(parts), this.vol.maxSlots, this.extended);
  }

  /** ocfs2_update_disk_slot: written in place (the slot map is never journaled), synced. */
  async write(map: SlotMap): Promise<void> {
    const bs = this.vol.blockSize;
    const parts = await Promise.all(this.blocks.map((b) => this.vol.dev.readBlocks(b, 1)));
    const data = Buffer.concat(parts);
    encodeSlotMap(map, this.extended, data.length, data);
    for (let i = 0; i < this.blocks.length; i++) await this.vol.dev.writeBlocks(this.blocks[i]!, data.subarray(i * bs, (i + 1) * bs));
    await this.vol.dev.flush();
  }
}

/** __ocfs2_find_empty_slot after ocfs2_find_slot's "do we already have a slot" check. */
export function chooseSlot(map: SlotMap, node: number, preferred?: number): number {
  const have = slotOfNode(map, node);
  if (have >= 0) return have;
  if (preferred !== undefined && preferred >= 0 && preferred < map.length && map[preferred] === null) return preferred;
  const free = map.findIndex((n) => n === null);
  if (free < 0) throw new PosixError('EBUSY', 'no free slot in the slot map');
  return free;
}

export async function openReadWrite(devPath: string, opts: OpenReadWriteOptions = {}): Promise<RwVolume> {
  const warn = opts.warn ?? (() => undefined);
  // Peek at the superblock first (read-only, nothing replayed) for the cluster checks.
  const peek = await Volume.open(devPath, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
  let local: boolean;
  try {
    local = peek.localMount;
    if (peek.sb.roCompat & (OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA)) {
      throw new Ocfs2UnsupportedError('quota features (usrquota/grpquota) are not supported read-write: mount read-only');
    }
    if (!local && (peek.sb.incompat & OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK)) {
      throw new Ocfs2UnsupportedError('user-space cluster stack volumes are not supported read-write');
    }
  } finally {
    await peek.close();
  }
  void OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT;
  const node = local ? 0 : (opts.node ?? 0);
  if (!local) {
    // Our own node may heartbeat already (this mount's stack, or the node's running one).  Until the
    // DLM lands, any other live node refuses the mount: then no slot of a live node is taken and no
    // journal of a live node is replayed below.
    const live = (await liveHeartbeatNodes(devPath, opts.heartbeatWaitMs ?? 2200)).filter((n) => n !== node);
    if (live.length > 0) {
      throw new PosixError('EBUSY', `node(s) ${live.join(', ')} are heartbeating on this volume: it is mounted elsewhere`);
    }
  }

  const vol = await Volume.open(devPath, { readOnly: false, cacheBytes: opts.cacheBytes, warn });
  try {
    const recovered = [...vol.recoveredSlots];
    if (recovered.length) warn(`replayed the journal of slot(s) ${recovered.join(', ')}`);

    const smf = await SlotMapFile.open(vol);
    const map = await smf.read();
    const slot = chooseSlot(map, node, opts.slot);
    map[slot] = node;
    await smf.write(map);

    const journaling = opts.journal ?? true;
    let journal: JournaledTransactionManager | null = null;
    let tm: TransactionManager;
    const ourJournal = vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, slot));
    if (journaling) {
      journal = await JournaledTransactionManager.open(vol, slot, opts.journalOptions);
      // ocfs2_journal_toggle_dirty(1): before the first transaction can reach the log.
      await setJournalDinodeFlags(vol, ourJournal, true, false);
      tm = journal;
    } else {
      if (vol.recoveredSlots.length || (await vol.journalStates()).some((j) => j.dirty && j.slot === slot)) {
        throw new Ocfs2Error('journal recovery needs a journaled mount');
      }
      tm = new DirectTransactionManager(vol);
    }

    // Finish the recovery of every replayed slot (ours included).
    for (const s of recovered) {
      const r = await recoverSlotAllocState(vol, tm, s);
      if (r.localAlloc || r.truncateLog) warn(`slot ${s}: ${r.localAlloc} local alloc and ${r.truncateLog} truncate log clusters back to the global bitmap`);
    }
    if (journal) await journal.checkpoint(); else await tm.flush();
    const others = recovered.filter((s) => s !== slot);
    if (others.length) {
      for (const s of others) {
        await setJournalDinodeFlags(vol, vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, s)), false, false);
      }
      // ocfs2_clear_slot for the recovered (dead) slots.
      const m2 = await smf.read();
      for (const s of others) if (s !== slot) m2[s] = null;
      await smf.write(m2);
    }

    const alloc = await Allocators.load(vol, slot);
    let closed = false;
    const rv: RwVolume = {
      vol, slot, node, tm, alloc, journal, orphanSlots: recovered,
      async close() {
        if (closed) return;
        closed = true;
        await tm.run((tx) => alloc.flushTruncateLog(tx));
        await tm.run((tx) => alloc.releaseLocalAlloc(tx));
        if (journal) {
          await journal.close();
          await setJournalDinodeFlags(vol, ourJournal, false, false);
        } else {
          await tm.flush();
        }
        const m = await smf.read();
        if (m[slot] === node) { m[slot] = null; await smf.write(m); }
        await vol.close();
      },
    };
    return rv;
  } catch (e) {
    await vol.close().catch(() => undefined);
    throw e;
  }
}
