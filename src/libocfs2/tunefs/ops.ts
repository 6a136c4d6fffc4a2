/**
 * The tunefs.ocfs2 operations on an offline volume (tunefs.ocfs2/op_*.c,
 * feature_*.c), on a TuneSession: label, UUID, cloned volume, cluster stack,
 * slot count, journal size, volume growth, feature flags.  Each one changes
 * what tunefs.ocfs2 changes, so that `debugfs.ocfs2 -R stats` of the result
 * equals tunefs.ocfs2's on a copy of the same volume.
 */
import { randomBytes } from 'node:crypto';
import {
  OCFS2_CLASSIC_CLUSTER_STACK, OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO,
  OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT,
  OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG, OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_FEATURE_INCOMPAT_XATTR,
  OCFS2_FEATURE_RO_COMPAT_GRPQUOTA, OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_FT_DIR, OCFS2_FT_REG_FILE,
  OCFS2_GROUP_DESC_SIGNATURE, OCFS2_INODE_SIGNATURE, OCFS2_INVALID_SLOT_U16, OCFS2_MAX_SLOTS,
  OCFS2_MIN_JOURNAL_SIZE, OCFS2_SYSTEM_FL, OCFS2_VALID_FL, OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_LOCAL_ALLOC_FL, S_IFDIR, signatureBytes,
} from '../constants';
import { CHECK_OFFSET } from '../blockcheck';
import {
  DINODE_ID2_OFFSET, DinodeHeader, chainRecsPerInode, extentRecsPerInode, inodeChainList, inodeExtentList,
  readId1Bitmap, writeId1Bitmap, writeInodeChainList, writeInodeExtentList, writeInodeLocalAlloc,
  writeInodeTruncateLog, type DinodeHeaderT,
} from '../structs/dinode';
import { emptyExtentList } from '../structs/extent';
import { GROUP_BITMAP_OFFSET, GroupDescHeader, longestZeroRun, setBit } from '../structs/group';
import { localAllocBitmapCapacity } from '../structs/localalloc';
import { truncateRecsFitting } from '../structs/truncatelog';
import { encodeSlotMap, slotMapBytes } from '../structs/slotmap';
import { allLeafExtents } from '../extentmap';
import { newJournalSuperblockBlock, decodeJournalSuperblock } from '../jbd2/structs';
import {
  GLOBAL_BITMAP_SYSTEM_INODE, JOURNAL_SYSTEM_INODE, LOCAL_GROUP_QUOTA_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE,
  NUM_SYSTEM_INODES, OCFS2_FIRST_LOCAL_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, SYSTEM_INODES, systemFileName,
} from '../sysfiles';
import { DirOps } from '../fs/dirops';
import { initEmptyDirectory } from '../fs/fs';
import { loadInode, storeInode } from '../fs/inode';
import { clustersPerGroup } from '../mkfs/options';
import type { Transaction } from '../txn';
import { TunefsError, type TuneSession } from './session';

/** Progress of long work: phase name, units done, units total. */
export type TuneProgress = (phase: string, done: number, total: number) => void;

const CLONED_LABEL = '-cloned';
const LABEL_MAX = 64;

function labelBytes(label: string): Buffer {
  const b = Buffer.alloc(LABEL_MAX);
  Buffer.from(label, 'utf8').copy(b, 0, 0, LABEL_MAX);
  return b;
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}

/* ---- label, UUID, cloned volume ------------------------------------------------------------ */

/** op_set_label: returns false when the label is already that (nothing written). */
export async function setLabel(s: TuneSession, label: string): Promise<boolean> {
  const want = labelBytes(label);
  const { sb } = await s.readSuper();
  if (sb.s_label.equals(want)) return false;
  await s.writeSuper((x) => { x.s_label = want; });
  return true;
}

/** A 32-hex or 36-character (dashed) UUID as 16 bytes (op_reset_uuid's parser). */
export function parseTuneUuid(text: string): Buffer {
  const hex = text.length === 36 && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)
    ? text.replace(/-/g, '') : text;
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new TunefsError(`invalid UUID "${text}"`);
  return Buffer.from(hex, 'hex');
}

function uuidV4(): Buffer {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

/**
 * op_reset_uuid: a new s_uuid (random, or the one given).  Like
 * tunefs.ocfs2 only s_uuid changes: s_uuid_hash keeps hashing existing xattr
 * and directory index names.
 */
export async function resetUuid(s: TuneSession, uuid?: string): Promise<string> {
  const u = uuid !== undefined ? parseTuneUuid(uuid) : uuidV4();
  await s.writeSuper((x) => { x.s_uuid = u; });
  return u.toString('hex').toUpperCase();
}

/** op_cloned_volume: a new random UUID and the label given, or the old one with "-cloned" appended. */
export async function clonedVolume(s: TuneSession, newLabel?: string): Promise<{ uuid: string; label: string }> {
  const u = uuidV4();
  const { sb } = await s.readSuper();
  let label: Buffer;
  if (newLabel !== undefined) {
    label = labelBytes(newLabel);
  } else {
    const old = cstr(sb.s_label);
    let base = Buffer.from(old, 'utf8');
    if (!old.endsWith(CLONED_LABEL)) {
      if (base.length + CLONED_LABEL.length > LABEL_MAX) base = base.subarray(0, LABEL_MAX - CLONED_LABEL.length);
      base = Buffer.concat([base, Buffer.from(CLONED_LABEL)]);
    }
    label = Buffer.alloc(LABEL_MAX);
    base.copy(label, 0, 0, LABEL_MAX);
  }
  await s.writeSuper((x) => { x.s_uuid = u; x.s_label = label; });
  return { uuid: u.toString('hex').toUpperCase(), label: cstr(label) };
}

/* ---- cluster stack --------------------------------------------------------------------------- */

export interface ClusterDesc {
  /** null: the default (classic o2cb without cluster info). */
  stack: string | null;
  cluster: string;
  globalHeartbeat: boolean;
}

/** libocfs2 ocfs2_set_cluster_desc: stack label, cluster name, flags and the incompat bits that go with them. */
export async function updateClusterStack(s: TuneSession, desc: ClusterDesc): Promise<void> {
  const { sb } = await s.readSuper();
  if (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) {
    throw new TunefsError('this is a local volume: it has no cluster stack to update');
  }
  let incompat = sb.s_feature_incompat;
  const needSlotMapFormat = desc.stack !== null && !(incompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP);
  if (desc.stack === null) {
    incompat &= ~(OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO);
  } else {
    incompat |= OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP;
    if (desc.stack === OCFS2_CLASSIC_CLUSTER_STACK) {
      incompat |= OCFS2_FEATURE_INCOMPAT_CLUSTERINFO;
      incompat &= ~OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK;
    } else if (!(incompat & OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) {
      incompat |= OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK;
    } else {
      incompat &= ~OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK;
    }
  }
  if (needSlotMapFormat) await formatSlotMap(s, sb.s_max_slots, true);
  const stack = Buffer.alloc(4);
  const cluster = Buffer.alloc(16);
  if (desc.stack !== null) {
    stack.write(desc.stack, 0, 4, 'latin1');
    cluster.write(desc.cluster, 0, 16, 'latin1');
  }
  await s.writeSuper((x) => {
    x.ci_stack = stack;
    x.ci_cluster = cluster;
    x.ci_stackflags = desc.stack === OCFS2_CLASSIC_CLUSTER_STACK && desc.globalHeartbeat ? OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT : 0;
    x.s_feature_incompat = incompat >>> 0;
  });
}

/* ---- slot map -------------------------------------------------------------------------------- */

/** libocfs2 ocfs2_format_slot_map: every slot empty, the file grown to hold max_slots entries. */
export async function formatSlotMap(s: TuneSession, maxSlots: number, extended: boolean): Promise<void> {
  const vol = s.vol;
  const blkno = vol.systemFile(systemFileName(SLOT_MAP_SYSTEM_INODE));
  const need = Math.ceil(slotMapBytes(maxSlots, extended) / vol.clusterSize);
  await s.rv.tm.run(async (tx) => {
    const { h } = await loadInode(vol, blkno);
    if (h.i_clusters < need) await extendFile(s, tx, blkno, need - h.i_clusters);
    await patchSize(s, tx, blkno, (x) => { x.i_size = x.i_clusters * vol.clusterSize; });
  });
  await s.rv.tm.flush();
  const { buf } = await vol.readInode(blkno);
  const exts = await allLeafExtents(vol, inodeExtentList(buf, blkno), blkno);
  const size = DinodeHeader.decode(buf, 0).i_size;
  const data = encodeSlotMap(new Array<number | null>(Math.floor(size / (extended ? 8 : 2))).fill(null), extended, size);
  let off = 0;
  for (const e of [...exts].sort((a, b) => a.cpos - b.cpos)) {
    const len = Math.min(e.clusters * vol.clusterSize, data.length - off);
    if (len <= 0) break;
    await vol.dev.writeBlocks(e.blkno, data.subarray(off, off + len));
    off += len;
  }
  await vol.dev.flush();
}

/* ---- file extension (libocfs2 ocfs2_extend_allocation) --------------------------------------- */

/** Append `clusters` clusters to a file's extent tree (any contiguity), zeroing none of them. */
async function extendFile(s: TuneSession, tx: Transaction, blkno: number, clusters: number): Promise<void> {
  const vol = s.vol;
  const tree = s.rv.extentTree(blkno);
  let cpos = (await loadInode(vol, blkno)).h.i_clusters;
  let left = clusters;
  while (left > 0) {
    const run = await s.rv.alloc.claimClusters(tx, 1, left);
    await tree.insert(tx, { cpos, clusters: run.count, blkno: run.start * vol.clusterBlocks, flags: 0 });
    cpos += run.count;
    left -= run.count;
    await patchSize(s, tx, blkno, (x) => { x.i_clusters += run.count; });
  }
}

async function patchSize(s: TuneSession, tx: Transaction, blkno: number, fn: (h: DinodeHeaderT) => void): Promise<void> {
  const { buf, h } = await loadInode(s.vol, blkno);
  fn(h);
  storeInode(tx, blkno, buf, h);
}

/* ---- journals -------------------------------------------------------------------------------- */

/** The journal of every slot: its inode, clusters, and the JBD2 incompat features (ORed over slots). */
async function journalState(s: TuneSession, slots: number): Promise<{ maxClusters: number; incompat: number }> {
  let maxClusters = 0;
  let incompat = 0;
  for (let i = 0; i < slots; i++) {
    const blkno = lookupSystem(s, JOURNAL_SYSTEM_INODE, i);
    const { buf } = await s.vol.readInode(blkno);
    const h = DinodeHeader.decode(buf, 0);
    maxClusters = Math.max(maxClusters, h.i_clusters);
    if (h.i_clusters === 0) continue;
    const exts = await allLeafExtents(s.vol, inodeExtentList(buf, blkno), blkno);
    const first = exts.find((e) => e.cpos === 0);
    if (!first) continue;
    const jsb = decodeJournalSuperblock(await s.vol.dev.readBlocks(first.blkno, Math.max(1, Math.ceil(1024 / s.vol.blockSize))));
    incompat |= jsb.s_feature_incompat;
  }
  return { maxClusters, incompat };
}

/**
 * libocfs2 ocfs2_make_journal on one journal inode: grow or truncate it to
 * `clusters`, then format it (all zeros, a fresh JBD2 superblock).
 */
async function makeJournal(s: TuneSession, blkno: number, clusters: number, incompat: number): Promise<void> {
  const vol = s.vol;
  const cs = vol.clusterSize;
  await s.rv.tm.run(async (tx) => {
    const { h } = await loadInode(vol, blkno);
    if (clusters > h.i_clusters) {
      await extendFile(s, tx, blkno, clusters - h.i_clusters);
    } else if (clusters < h.i_clusters) {
      const removed = await s.rv.extentTree(blkno).remove(tx, clusters, h.i_clusters - clusters);
      for (const r of removed) await s.rv.alloc.freeClusters(tx, { start: r.blkno / vol.clusterBlocks, count: r.clusters });
    }
    await patchSize(s, tx, blkno, (x) => {
      x.i_clusters = clusters;
      x.i_size = clusters * cs;
      x.i_mtime = Math.floor(Date.now() / 1000);
    });
  });
  await s.rv.tm.flush();
  // ocfs2_format_journal: zero the whole file, then the superblock in its first block.
  const { buf } = await vol.readInode(blkno);
  const exts = await allLeafExtents(vol, inodeExtentList(buf, blkno), blkno);
  const zero = Buffer.alloc(Math.min(4 << 20, cs * 64));
  let firstBlock = -1;
  for (const e of exts) {
    if (e.cpos === 0) firstBlock = e.blkno;
    let left = e.clusters * cs;
    let at = e.blkno;
    while (left > 0) {
      const n = Math.min(left, zero.length);
      await vol.dev.writeBlocks(at, zero.subarray(0, n));
      at += n / vol.blockSize;
      left -= n;
    }
  }
  if (firstBlock < 0) throw new TunefsError(`journal inode ${blkno} has no first extent`);
  const { sb } = await s.readSuper();
  await vol.dev.writeBlocks(firstBlock, newJournalSuperblockBlock(vol.blockSize, clusters * vol.clusterBlocks, sb.s_uuid, incompat));
  await vol.dev.flush();
}

/**
 * tunefs_set_journal_size: every slot's journal to `bytes` (0: the largest
 * journal now, for slots just added), reformatted; a journal already that size
 * is left alone.
 */
export async function setJournalSize(s: TuneSession, bytes: number, progress?: TuneProgress, slots?: number): Promise<number> {
  const vol = s.vol;
  const n = slots ?? vol.maxSlots;
  const st = await journalState(s, n);
  let clusters = Math.ceil(Math.ceil(bytes / vol.blockSize) / vol.clusterBlocks);
  if (!clusters) clusters = st.maxClusters;
  if (clusters * vol.clusterSize < OCFS2_MIN_JOURNAL_SIZE) {
    throw new TunefsError(`journal size ${clusters * vol.clusterSize} is below the minimum of ${OCFS2_MIN_JOURNAL_SIZE} bytes`);
  }
  let changed = 0;
  for (let i = 0; i < n; i++) {
    const blkno = lookupSystem(s, JOURNAL_SYSTEM_INODE, i);
    const { h } = await loadInode(vol, blkno);
    if (h.i_clusters !== clusters) {
      await makeJournal(s, blkno, clusters, st.incompat);
      changed++;
    }
    progress?.('Setting journal size', i + 1, n);
  }
  return changed;
}

/* ---- slots ----------------------------------------------------------------------------------- */

/** System files created in this session, on top of the ones the volume was opened with. */
const created = new WeakMap<TuneSession, Map<string, number>>();

function lookupSystem(s: TuneSession, type: number, slot?: number): number {
  const name = systemFileName(type, slot);
  return created.get(s)?.get(name) ?? s.vol.systemFile(name);
}

/**
 * A new system inode (libocfs2 ocfs2_new_system_inode + ocfs2_init_inode):
 * from global_inode_alloc, with the per-type id2 set up empty.
 */
async function newSystemInode(s: TuneSession, tx: Transaction, type: number): Promise<{ blkno: number; buf: Buffer; h: DinodeHeaderT }> {
  const vol = s.vol;
  const bs = vol.blockSize;
  const info = SYSTEM_INODES[type]!;
  const sa = await s.rv.alloc.claimSystemInode(tx);
  const flags = info.iflags | OCFS2_VALID_FL | OCFS2_SYSTEM_FL;
  const now = Math.floor(Date.now() / 1000);
  const buf = Buffer.alloc(bs);
  const h: DinodeHeaderT = {
    ...DinodeHeader.zero(),
    i_signature: signatureBytes(OCFS2_INODE_SIGNATURE),
    i_generation: vol.sb.inode.i_generation >>> 0,
    i_fs_generation: vol.sb.fsGeneration >>> 0,
    i_blkno: sa.blkno,
    i_suballoc_slot: OCFS2_INVALID_SLOT_U16,
    i_suballoc_loc: sa.suballocLoc,
    i_suballoc_bit: sa.suballocBit,
    i_mode: info.mode,
    i_links_count: (info.mode & S_IFDIR) ? 2 : 1,
    i_atime: now, i_ctime: now, i_mtime: now,
    i_flags: flags,
  };
  DinodeHeader.encode(h, buf, 0);
  if (flags & OCFS2_LOCAL_ALLOC_FL) {
    const laSize = localAllocBitmapCapacity(bs, DINODE_ID2_OFFSET);
    writeInodeLocalAlloc(buf, { header: { la_bm_off: 0, la_size: laSize, la_reserved1: 0, la_reserved2: 0n }, bitmap: Buffer.alloc(laSize) });
  } else if (flags & OCFS2_CHAIN_FL) {
    writeInodeChainList(buf, {
      cpg: clustersPerGroup(bs, vol.clusterBits), bpc: vol.clusterBlocks, count: chainRecsPerInode(bs),
      nextFreeRec: 0, reserved1: 0n, recs: [],
    });
  } else if (flags & OCFS2_DEALLOC_FL) {
    writeInodeTruncateLog(buf, { count: truncateRecsFitting(bs, DINODE_ID2_OFFSET), used: 0, reserved1: 0, recs: [] });
  } else if (!(info.mode & S_IFDIR) || !vol.inlineData) {
    // Directories stay inline when the volume has inline data (initEmptyDirectory).
    writeInodeExtentList(buf, emptyExtentList(extentRecsPerInode(bs)));
  }
  return { blkno: sa.blkno, buf, h: DinodeHeader.decode(buf, 0) };
}

/**
 * op_set_slot_count, growing: for every per-slot system file type, the files
 * of the new slots (orphan dirs, allocators, journals, local alloc, truncate
 * log), linked into the system directory; then the new journals get the
 * size of the largest existing one, the slot map is reformatted for the new
 * count, and s_max_slots is written.
 */
export async function setSlotCount(s: TuneSession, slots: number, progress?: TuneProgress): Promise<boolean> {
  const vol = s.vol;
  const { sb } = await s.readSuper();
  const old = sb.s_max_slots;
  if (slots === old) return false;
  if (slots < old) throw new TunefsError(`removing node slots (${old} -> ${slots}) is not supported; only adding`);
  const extended = (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) !== 0;
  const max = extended ? 0x7fff : OCFS2_MAX_SLOTS;
  if (slots > max) {
    throw new TunefsError(`at most ${max} node slots with ${extended ? 'the extended' : 'the old-style'} slot map${extended ? '' : ' (enable extended-slotmap for more)'}`);
  }
  if (sb.s_feature_ro_compat & (OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA)) {
    throw new TunefsError('adding slots to a volume with quotas is not supported (local quota files)');
  }
  const map = new Map<string, number>();
  created.set(s, map);
  const dirs = new DirOps(s.rv);
  const sysdir = vol.systemDirBlkno;
  const types: number[] = [];
  for (let t = OCFS2_FIRST_LOCAL_SYSTEM_INODE; t < NUM_SYSTEM_INODES; t++) {
    if (t === LOCAL_USER_QUOTA_SYSTEM_INODE || t === LOCAL_GROUP_QUOTA_SYSTEM_INODE) continue;
    types.push(t);
  }
  const total = types.length * (slots - old);
  let done = 0;
  for (const t of types) {
    for (let slot = old; slot < slots; slot++) {
      const name = systemFileName(t, slot);
      const nameBuf = Buffer.from(name, 'latin1');
      // "Goto next if file already exists" (an earlier interrupted run).
      const have = await dirs.find(sysdir, nameBuf);
      if (have) { map.set(name, have.inode); done++; continue; }
      await s.rv.tm.run(async (tx) => {
        const ni = await newSystemInode(s, tx, t);
        const isDir = (SYSTEM_INODES[t]!.mode & S_IFDIR) !== 0;
        if (isDir) {
          await initEmptyDirectory(s.rv, tx, ni, sysdir);
          await patchSize(s, tx, sysdir, (x) => { x.i_links_count += 1; });
        } else {
          storeInode(tx, ni.blkno, ni.buf, ni.h);
        }
        await dirs.add(tx, sysdir, { inode: ni.blkno, fileType: isDir ? OCFS2_FT_DIR : OCFS2_FT_REG_FILE, name: nameBuf });
        map.set(name, ni.blkno);
      });
      progress?.('Adding slots', ++done, total);
    }
  }
  await s.rv.tm.flush();
  await setJournalSize(s, 0, progress, slots);
  await formatSlotMap(s, slots, extended);
  await s.writeSuper((x) => { x.s_max_slots = slots; });
  return true;
}

/* ---- volume size (op_resize_volume, offline) ---------------------------------------------- */

/**
 * Grow the volume to `clusters` (default: what the device holds), as
 * run_resize offline: the tail group is rounded up to cl_cpg, new groups are
 * added round-robin to the chains after the tail's, each with its first
 * cluster zeroed and bit 0 (the descriptor) set; the global bitmap inode and
 * the superblock get the new size, under the aborted-resize flag.
 */
export async function growVolume(s: TuneSession, clusters?: number, progress?: TuneProgress): Promise<{ from: number; to: number }> {
  const vol = s.vol;
  const cb = vol.clusterBlocks;
  const deviceClusters = Math.floor(vol.dev.blockCount / cb);
  const from = vol.sb.clusters;
  const to = clusters ?? deviceClusters;
  if (to > 0xffffffff) throw new TunefsError(`an OCFS2 volume cannot have more than ${0xffffffff} clusters`);
  if (to > deviceClusters) throw new TunefsError(`the device cannot hold more than ${deviceClusters} clusters (${deviceClusters * vol.clusterSize} bytes)`);
  if (to < from) throw new TunefsError('shrinking ocfs2 filesystems is not supported');
  if (to === from) return { from, to };
  const journal = await journalState(s, vol.maxSlots);
  if (!(journal.incompat & 0x2) && to * cb > 0xffffffff) {
    throw new TunefsError('the journal is not configured for more than 2^32 blocks: enable the block64 journal feature first');
  }

  await s.writeSuper((x) => { x.s_feature_incompat = (x.s_feature_incompat | OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG) >>> 0; });
  const bmBlkno = vol.systemFile(systemFileName(GLOBAL_BITMAP_SYSTEM_INODE));
  const firstGroup = vol.sb.raw.s_first_cluster_group;
  const bs = vol.blockSize;
  await s.rv.tm.run(async (tx) => {
    const ibuf = Buffer.from((await vol.readInode(bmBlkno)).buf);
    const cl = inodeChainList(ibuf, bmBlkno);
    const bm = readId1Bitmap(ibuf);
    const groupOf = (c: number): number => { const k = Math.floor(c / cl.cpg); return k === 0 ? firstGroup : k * cl.cpg * cb; };
    let first = from;
    let left = to - from;
    let totalBits = 0;
    let usedBits = 0;
    // The tail group.
    const tailBlkno = groupOf(first - 1);
    const tail = Buffer.from(await vol.readMetaBlock(tailBlkno, CHECK_OFFSET.groupDesc));
    const th = GroupDescHeader.decode(tail, 0);
    if (cl.nextFreeRec === 1 && cl.cpg < 8 * th.bg_size) cl.cpg = 8 * th.bg_size;
    let chain = th.bg_chain;
    const grow = Math.min(left, cl.cpg - th.bg_bits / cl.bpc);
    if (grow > 0) {
      th.bg_bits += grow * cl.bpc;
      th.bg_free_bits_count += grow * cl.bpc;
      th.bg_contig_free_bits = longestZeroRun(tail.subarray(GROUP_BITMAP_OFFSET, GROUP_BITMAP_OFFSET + th.bg_size), th.bg_bits);
      GroupDescHeader.encode(th, tail, 0);
      cl.recs[chain]!.c_total += grow * cl.bpc;
      cl.recs[chain]!.c_free += grow * cl.bpc;
      totalBits += grow * cl.bpc;
      left -= grow;
      first += grow;
    }
    const zeroCluster = Buffer.alloc(vol.clusterSize);
    const newGroups = Math.ceil(left / cl.cpg);
    let made = 0;
    while (left > 0) {
      const gd = groupOf(first);
      const chunk = Math.min(left, cl.cpg);
      left -= chunk;
      first += chunk;
      if (++chain >= cl.count) chain = 0;
      if (chain >= cl.recs.length) { cl.recs.push({ c_free: 0, c_total: 0, c_blkno: 0 }); cl.nextFreeRec = cl.recs.length; }
      const rec = cl.recs[chain]!;
      const bits = chunk * cl.bpc;
      const buf = Buffer.alloc(bs);
      const bitmap = new Uint8Array(bs - GROUP_BITMAP_OFFSET);
      setBit(bitmap, 0);
      GroupDescHeader.encode({
        ...GroupDescHeader.zero(), bg_signature: signatureBytes(OCFS2_GROUP_DESC_SIGNATURE),
        bg_size: bs - GROUP_BITMAP_OFFSET, bg_bits: bits, bg_free_bits_count: bits - 1, bg_chain: chain,
        bg_contig_free_bits: bits - 1,
        bg_generation: vol.sb.fsGeneration >>> 0, bg_next_group: rec.c_blkno, bg_parent_dinode: bmBlkno, bg_blkno: gd,
      }, buf, 0);
      Buffer.from(bitmap).copy(buf, GROUP_BITMAP_OFFSET);
      rec.c_blkno = gd;
      rec.c_free += bits - 1;
      rec.c_total += bits;
      usedBits += 1;
      totalBits += bits;
      // Zero the group's first cluster, then the descriptor goes in it.
      await tx.writeData(gd, zeroCluster);
      tx.writeMeta(gd, buf, CHECK_OFFSET.groupDesc);
      progress?.('Growing the volume', ++made, newGroups);
    }
    if (grow > 0) tx.writeMeta(tailBlkno, tail, CHECK_OFFSET.groupDesc);
    writeInodeChainList(ibuf, cl);
    const h = DinodeHeader.decode(ibuf, 0);
    h.i_clusters = to;
    h.i_size = to * vol.clusterSize;
    DinodeHeader.encode(h, ibuf, 0);
    writeId1Bitmap(ibuf, { i_total: bm.i_total + totalBits, i_used: bm.i_used + usedBits });
    tx.writeMeta(bmBlkno, ibuf, CHECK_OFFSET.dinode);
  });
  await s.rv.tm.flush();
  await s.writeSuper((x, h) => {
    h.i_clusters = to;
    x.s_feature_incompat = (x.s_feature_incompat & ~OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG) >>> 0;
  });
  return { from, to };
}

/* ---- features -------------------------------------------------------------------------------- */

export interface FeatureChange { name: string; on: boolean }
