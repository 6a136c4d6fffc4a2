/**
 * The layout mkfs.ocfs2 1.8.7 produces, computed in memory as final block
 * contents.  mkfs.ocfs2 works in two phases and we replay both allocators:
 *
 *  1. mkfs.c itself: the global bitmap groups, the system inode group
 *     (global_inode_alloc), root and system directories, every system
 *     inode (in ocfs2_system_inodes order), the heartbeat area and the
 *     orphan directories.  Its allocator walks the chains in chain order
 *     and takes the first group with enough free bits, first fit.
 *  2. libocfs2 on the opened volume: backup superblocks, the journals,
 *     the extent allocator pre-growth, the slot map, quota files,
 *     lost+found.  Its allocator (ocfs2_bitmap_alloc_range_generic) walks
 *     the groups in disk order and takes, in the first group with at least
 *     `min` free bits, the first run of `len` bits or else the longest run.
 *
 * Only the final state is kept: a map of metadata blocks (block-sized
 * buffers) and the byte ranges that must be zeroed first.
 */
import {
  OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT, OCFS2_DEALLOC_FL,
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG,
  OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT,
  OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_FEATURE_INCOMPAT_XATTR,
  OCFS2_FEATURE_RO_COMPAT_GRPQUOTA, OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_FT_DIR, OCFS2_FT_REG_FILE,
  OCFS2_HEARTBEAT_FL, OCFS2_INLINE_DATA_FL, OCFS2_INODE_SIGNATURE, OCFS2_INVALID_SLOT_U16, OCFS2_JOURNAL_FL,
  OCFS2_LOCAL_ALLOC_FL, OCFS2_MAJOR_REV_LEVEL, OCFS2_MINOR_REV_LEVEL, OCFS2_MIN_XATTR_INLINE_SIZE,
  OCFS2_QUOTA_FL, OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_FL, OCFS2_SUPER_BLOCK_SIGNATURE, OCFS2_SYSTEM_FL,
  OCFS2_VALID_FL, OCFS2_GROUP_DESC_SIGNATURE, S_IFDIR, S_IFREG, signatureBytes, OCFS2_CLASSIC_CLUSTER_STACK,
} from '../constants';
import {
  DINODE_ID2_OFFSET, DinodeHeader, type DinodeHeaderT, chainRecsPerInode, extentRecsPerInode, maxInlineData,
  writeId1Bitmap, writeInlineDataHeader, writeInodeChainList, writeInodeExtentList, writeInodeLocalAlloc,
  writeInodeTruncateLog,
} from '../structs/dinode';
import { SuperBlock, SUPERBLOCK_OFFSET, backupSuperblockBlknos } from '../structs/superblock';
import { GROUP_BITMAP_OFFSET, GroupDescHeader, groupBitmapSize, setBit, testBit, type ChainRecT } from '../structs/group';
import { emptyExtentList, type ExtentRec } from '../structs/extent';
import { localAllocBitmapCapacity } from '../structs/localalloc';
import { truncateRecsFitting } from '../structs/truncatelog';
import { encodeSlotMap } from '../structs/slotmap';
import {
  DirEntryHeader, dirBlockCheckOffset, dirRecLen, dirTrailerOffset, encodeDirEntry,
  initDirTrailer, initDotEntries, insertDirEntry, newDirWantsTrailer,
} from '../structs/dir';
import {
  DiskDqHeader, DiskDqdbHeader, GlobalDiskDqblk, GlobalDiskDqinfo, LocalDiskDqinfo, OCFS2_GLOBAL_QMAGICS,
  OCFS2_LOCAL_QMAGICS, OLQF_CLEAN, QUOTA_INFO_OFFSET, QT_TREEOFF, quotaCheckOffset,
} from '../structs/quota';
import { CHECK_OFFSET, updateBlockCheck } from '../blockcheck';
import { uuidHash } from '../dirhash';
import { JBD2_FEATURE_INCOMPAT_64BIT, newJournalSuperblockBlock } from '../jbd2/structs';
import {
  BAD_BLOCK_SYSTEM_INODE, EXTENT_ALLOC_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE,
  GROUP_QUOTA_SYSTEM_INODE, HEARTBEAT_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, JOURNAL_SYSTEM_INODE,
  LOCAL_ALLOC_SYSTEM_INODE, LOCAL_GROUP_QUOTA_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE, NUM_SYSTEM_INODES,
  ORPHAN_DIR_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, SYSTEM_INODES, TRUNCATE_LOG_SYSTEM_INODE,
  USER_QUOTA_SYSTEM_INODE, systemFileName,
} from '../sysfiles';
import { clustersPerGroup, MkfsError, type Geometry } from './options';
import { leadingSpace } from './ocfs1';

/** O2NM_MAX_NODES + 1 heartbeat blocks. */
const HEARTBEAT_BLOCKS = 256;
/** SYSTEM_FILE_NAME_MAX: mkfs sizes the system directory for 40-byte names. */
const SYSTEM_FILE_NAME_MAX = 40;
const CLEAR_CHUNK = 1024 * 1024;
const OCFS2_DEF_BLOCK_GRACE = 604800;
const OCFS2_DEF_INODE_GRACE = 604800;
const OCFS2_DEF_QUOTA_SYNC = 10000;

export interface LayoutParams {
  geometry: Geometry;
  label: string;
  uuid: Buffer;
  generation: number;
  /** Seconds since the epoch for every timestamp. */
  now: number;
  dxSeed: [number, number, number];
  clusterStack?: string;
  clusterName?: string;
  globalHeartbeat?: boolean;
}

/** A file's data extent as [first block, blocks]. */
export interface Extent { blkno: number; clusters: number }

export interface Layout {
  /** Final contents of every metadata block we write, by block number. */
  blocks: Map<number, Buffer>;
  /** Byte ranges to zero before the metadata goes down, in order. */
  zero: Array<{ offset: number; length: number; what: string }>;
  /** Bytes [0, 2*bs) written as the OCFS1 compatibility header. */
  leading: Buffer;
  superblock: { blkno: number; incompat: number; compat: number; roCompat: number };
  systemInodes: Map<string, number>;
  rootBlkno: number;
  sysdirBlkno: number;
  lostFoundBlkno: number;
  backups: number[];
  journals: Extent[][];
  summary: {
    groups: number; tailGroupBits: number; globalCpg: number; extentAllocBytes: number; extentAllocGroups: number;
  };
}

/* ---- the global bitmap ------------------------------------------------------------------- */

interface ClusterGroup {
  index: number;
  blkno: number;
  bits: number;
  bitmap: Uint8Array;
  free: number;
  chain: number;
  next: number;
}

class GlobalBitmap {
  readonly groups: ClusterGroup[] = [];
  readonly cpi: number;
  numChains: number;
  constructor(readonly g: Geometry, readonly firstGroupBlkno: number, firstGroupClusters: number) {
    const bpcBlocks = g.clusterSize / g.blockSize;
    this.cpi = chainRecsPerInode(g.blockSize);
    for (let i = 0; i < g.groups; i++) {
      const bits = i === g.groups - 1 ? g.tailGroupBits : g.globalCpg;
      const grp: ClusterGroup = {
        index: i, blkno: i === 0 ? firstGroupBlkno : i * g.globalCpg * bpcBlocks, bits,
        bitmap: new Uint8Array(Math.ceil(g.globalCpg / 8)), free: bits, chain: i % this.cpi, next: 0,
      };
      // Bit 0 is the descriptor's own cluster (for group 0: cluster 0 and
      // then every cluster up to and including the one holding the group).
      this.mark(grp, 0);
      if (i === 0) for (let b = 1; b <= firstGroupClusters; b++) this.mark(grp, b);
      this.groups.push(grp);
    }
    for (let i = this.cpi; i < this.groups.length; i++) this.groups[i - this.cpi]!.next = this.groups[i]!.blkno;
    this.numChains = Math.min(this.cpi, this.groups.length);
  }

  private mark(grp: ClusterGroup, bit: number): void {
    if (!testBit(grp.bitmap, bit)) { setBit(grp.bitmap, bit); grp.free--; }
  }

  private take(grp: ClusterGroup, bit: number, n: number): number {
    for (let b = bit; b < bit + n; b++) this.mark(grp, b);
    return grp.index * this.g.globalCpg + bit;
  }

  /** First run of n clear bits in [0, bits), or -1. */
  private firstRun(grp: ClusterGroup, n: number): number {
    let run = 0;
    for (let b = 0; b < grp.bits; b++) {
      if (testBit(grp.bitmap, b)) { run = 0; continue; }
      if (++run === n) return b - n + 1;
    }
    return -1;
  }

  /** mkfs.c alloc_from_bitmap: chain order, first group with n free bits, first fit there. */
  mkfsAlloc(n: number, what: string): number {
    for (let c = 0; c < this.numChains; c++) {
      for (let i = c; i < this.groups.length; i += this.cpi) {
        const grp = this.groups[i]!;
        if (grp.free >= n) {
          const bit = this.firstRun(grp, n);
          if (bit < 0) throw new MkfsError(`could not allocate ${n} clusters for ${what}: volume too small`);
          return this.take(grp, bit, n);
        }
      }
    }
    throw new MkfsError(`could not allocate ${n} clusters for ${what}: volume too small`);
  }

  /** libocfs2 ocfs2_new_clusters(min, len): returns [first cluster, count]. */
  libAlloc(min: number, len: number, what: string): [number, number] {
    for (const grp of this.groups) {
      if (grp.free < min) continue;
      let bestStart = -1;
      let bestLen = 0;
      let b = 0;
      while (b + min <= grp.bits) {
        while (b < grp.bits && testBit(grp.bitmap, b)) b++;
        if (b >= grp.bits) break;
        let e = b;
        while (e < grp.bits && !testBit(grp.bitmap, e)) e++;
        if (e - b >= len) return [this.take(grp, b, len), len];
        if (e - b > bestLen) { bestLen = e - b; bestStart = b; }
        b = e + 1;
      }
      if (bestStart >= 0 && bestLen >= min) return [this.take(grp, bestStart, bestLen), bestLen];
    }
    throw new MkfsError(`could not allocate ${min} clusters for ${what}: volume too small`);
  }

  /** ocfs2_new_specific_cluster (a no-op when already in use). */
  markCluster(c: number): void {
    const grp = this.groups[Math.floor(c / this.g.globalCpg)];
    if (grp) this.mark(grp, c % this.g.globalCpg);
  }

  used(): number { return this.groups.reduce((s, x) => s + x.bits - x.free, 0); }
}

/* ---- suballocator groups ---------------------------------------------------------------- */

interface SubGroup { blkno: number; bits: number; bitmap: Uint8Array; free: number; chain: number; next: number; bgSize: number }

class ChainAllocator {
  groups: SubGroup[] = [];
  /** cl_recs: head group blkno per chain, and sums. */
  recs: Array<{ head: SubGroup }> = [];
  clusters = 0;
  constructor(readonly cpg: number, readonly bpc: number, readonly count: number) {}
  total(): number { return this.groups.reduce((s, x) => s + x.bits, 0); }
  usedBits(): number { return this.groups.reduce((s, x) => s + x.bits - x.free, 0); }
  chainRecs(): ChainRecT[] {
    return this.recs.map((r) => {
      let free = 0;
      let total = 0;
      for (const x of this.groups) if (x.chain === this.recs.indexOf(r)) { free += x.free; total += x.bits; }
      return { c_free: free, c_total: total, c_blkno: r.head.blkno };
    });
  }
  /** ocfs2_chain_add_group's bookkeeping for a group at blkno. */
  addGroup(blkno: number, bgSize: number): SubGroup {
    const chain = this.recs.length < this.count ? this.recs.length : Math.floor(this.clusters / this.cpg) % this.count;
    const bits = this.cpg * this.bpc;
    const grp: SubGroup = { blkno, bits, bitmap: new Uint8Array(bgSize), free: bits, chain, next: 0, bgSize };
    setBit(grp.bitmap, 0);
    grp.free--;
    if (chain < this.recs.length) {
      grp.next = this.recs[chain]!.head.blkno;
      this.recs[chain]!.head = grp;
    } else {
      this.recs.push({ head: grp });
    }
    this.groups.push(grp);
    this.clusters += this.cpg;
    return grp;
  }
  /** ocfs2_chain_alloc: the lowest clear bit in disk order; returns [blkno, gd blkno, bit]. */
  allocBlock(): [number, number, number] | null {
    const sorted = [...this.groups].sort((a, b) => a.blkno - b.blkno);
    for (const grp of sorted) {
      for (let b = 0; b < grp.bits; b++) {
        if (!testBit(grp.bitmap, b)) {
          setBit(grp.bitmap, b);
          grp.free--;
          return [grp.blkno + b, grp.blkno, b];
        }
      }
    }
    return null;
  }
}

/* ---- phase-1 directories (mkfs.c DirData) ---------------------------------------------------- */

interface DirData {
  /** Concatenated directory blocks (bs each). */
  blocks: Buffer[];
  lastOff: number;
  links: number;
  inline: boolean;
  inodeBlkno: number;
  extent: Extent | null;
}

/* ---- the layout ------------------------------------------------------------------------------ */

export function computeLayout(p: LayoutParams): Layout {
  const g = p.geometry;
  const bs = g.blockSize;
  const cs = g.clusterSize;
  const bpc = cs / bs;
  const c2b = (c: number): number => c * bpc;
  const clustersFor = (bytes: number): number => Math.ceil(bytes / cs);
  const blocks = new Map<number, Buffer>();
  const zero: Layout['zero'] = [];
  const metaEcc = (g.features.incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) !== 0;
  const usrQuota = (g.features.roCompat & OCFS2_FEATURE_RO_COMPAT_USRQUOTA) !== 0;
  const grpQuota = (g.features.roCompat & OCFS2_FEATURE_RO_COMPAT_GRPQUOTA) !== 0;
  const discontig = (g.features.incompat & OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG) !== 0;
  const trailers = newDirWantsTrailer({ metaEcc, indexedDirsFeature: g.dxDirs });
  const maxInline = maxInlineData(bs);
  const gen = p.generation >>> 0;

  const ecc = (buf: Buffer, off: number): void => { if (metaEcc) updateBlockCheck(buf, off); };
  const putBlock = (blkno: number, buf: Buffer): void => { blocks.set(blkno, buf); };
  zero.push({ offset: 0, length: Math.min(CLEAR_CHUNK, g.bytes), what: 'start of volume' });
  zero.push({ offset: Math.max(0, g.bytes - CLEAR_CHUNK), length: Math.min(CLEAR_CHUNK, g.bytes), what: 'end of volume' });

  /* -- global bitmap -------------------------------------------------------------------------- */
  const c2bBits = g.clusterBits - g.blockBits;
  const firstGroupClusters = Math.ceil((OCFS2_SUPER_BLOCK_BLKNO + 1) / 2 ** c2bBits);
  const firstGroupBlkno = firstGroupClusters * 2 ** c2bBits;
  const gbm = new GlobalBitmap(g, firstGroupBlkno, firstGroupClusters);

  /* -- system inode group ---------------------------------------------------------------------- */
  const sysBlocksNeeded = (slots: number): number =>
    SYSTEM_INODES.reduce((s, info) => s + (info.global ? 1 : slots), 0);
  const blocksNeeded = 3 + 1 + 1 + 1 + sysBlocksNeeded(Math.max(32, g.slots));
  const sgClusters = clustersFor(blocksNeeded * bs);
  const sgFirst = gbm.mkfsAlloc(sgClusters, 'the system inode group');
  const sgBlkno = c2b(sgFirst);
  const sgBits = sgClusters * bpc;
  if (Math.ceil(sgBits / 8) > bs - GROUP_BITMAP_OFFSET) {
    throw new MkfsError(`the system inode group (${sgBits} bits) does not fit one group descriptor at this block/cluster size`);
  }
  const sysGroup = { bitmap: new Uint8Array(bs - GROUP_BITMAP_OFFSET), used: 1 };
  setBit(sysGroup.bitmap, 0);
  const allocInode = (): { blkno: number; bit: number } => {
    for (let b = 0; b < sgBits; b++) {
      if (!testBit(sysGroup.bitmap, b)) {
        setBit(sysGroup.bitmap, b);
        sysGroup.used++;
        return { blkno: sgBlkno + b, bit: b };
      }
    }
    throw new MkfsError('system inode group full');
  };

  /* -- directories (phase 1) ------------------------------------------------------------------- */
  const dirTrailerFor = (dir: DirData): boolean => trailers && !dir.inline;
  const newDirBlock = (dir: DirData): void => {
    const buf = Buffer.alloc(bs);
    const idx = dir.blocks.length;
    dir.blocks.push(buf);
    if (dirTrailerFor(dir)) {
      DirEntryHeader.encode({ inode: 0, rec_len: dirTrailerOffset(bs), name_len: 0, file_type: 0 }, buf, 0);
      initDirTrailer(buf, bs, { blkno: dir.extent!.blkno + idx, parentDinode: dir.inodeBlkno, freeRecLen: 0 });
    } else {
      DirEntryHeader.encode({ inode: 0, rec_len: bs, name_len: 0, file_type: 0 }, buf, 0);
    }
    dir.lastOff = idx * bs;
  };
  /** add_entry_to_directory: use the last entry's slack or start a new block. */
  const addEntry = (dir: DirData, name: string, ino: number, type: number): void => {
    const need = dirRecLen(name.length);
    let at = -1;
    if (dir.blocks.length) {
      const blk = dir.blocks[Math.floor(dir.lastOff / bs)]!;
      const off = dir.lastOff % bs;
      const de = DirEntryHeader.decode(blk, off);
      const real = dirRecLen(de.name_len);
      if (de.inode === 0 && de.rec_len >= need) {
        at = dir.lastOff;
      } else if (de.rec_len >= real + need) {
        blk.writeUInt16LE(real, off + 8);
        DirEntryHeader.encode({ inode: 0, rec_len: de.rec_len - real, name_len: 0, file_type: 0 }, blk, off + real);
        at = dir.lastOff + real;
      }
    }
    if (at < 0) { newDirBlock(dir); at = dir.lastOff; }
    const blk = dir.blocks[Math.floor(at / bs)]!;
    const off = at % bs;
    const recLen = blk.readUInt16LE(off + 8);
    encodeDirEntry(blk, off, { inode: ino, fileType: type, name: Buffer.from(name, 'latin1') }, recLen);
    dir.lastOff = at;
    if (type === OCFS2_FT_DIR) dir.links++;
  };

  const newDir = (inline: boolean, extent: Extent | null, inodeBlkno: number): DirData =>
    ({ blocks: [], lastOff: 0, links: 0, inline, inodeBlkno, extent });

  // Root directory.
  const rootExtent = g.inlineData ? null : { blkno: c2b(gbm.mkfsAlloc(1, 'the root directory')), clusters: 1 };
  const rootIno = allocInode();
  const rootDir = newDir(g.inlineData, rootExtent, rootIno.blkno);
  addEntry(rootDir, '.', rootIno.blkno, OCFS2_FT_DIR);
  addEntry(rootDir, '..', rootIno.blkno, OCFS2_FT_DIR);

  // System directory.
  const sysdirBytes = dirRecLen(SYSTEM_FILE_NAME_MAX) * sysBlocksNeeded(g.slots);
  const sysdirInline = g.inlineData && sysdirBytes <= maxInline;
  let sysdirExtent: Extent | null = null;
  if (!sysdirInline) {
    const perBlock = Math.floor(bs / dirRecLen(SYSTEM_FILE_NAME_MAX));
    const nblocks = Math.ceil(sysBlocksNeeded(g.slots) / perBlock);
    const n = clustersFor(nblocks * bs);
    sysdirExtent = { blkno: c2b(gbm.mkfsAlloc(n, 'the system directory')), clusters: n };
  }
  const sysIno = allocInode();
  const sysDir = newDir(sysdirInline, sysdirExtent, sysIno.blkno);
  addEntry(sysDir, '.', sysIno.blkno, OCFS2_FT_DIR);
  addEntry(sysDir, '..', sysIno.blkno, OCFS2_FT_DIR);

  const skip = (type: number): boolean =>
    ((type === USER_QUOTA_SYSTEM_INODE || type === LOCAL_USER_QUOTA_SYSTEM_INODE) && !usrQuota)
    || ((type === GROUP_QUOTA_SYSTEM_INODE || type === LOCAL_GROUP_QUOTA_SYSTEM_INODE) && !grpQuota);
  const sysInodes: Array<Array<{ blkno: number; bit: number }>> = [];
  const systemInodes = new Map<string, number>();
  for (let t = 0; t < NUM_SYSTEM_INODES; t++) {
    sysInodes.push([]);
    if (skip(t)) continue;
    const info = SYSTEM_INODES[t]!;
    const n = info.global ? 1 : g.slots;
    for (let s = 0; s < n; s++) {
      const ino = allocInode();
      sysInodes[t]!.push(ino);
      const name = systemFileName(t, info.global ? undefined : s);
      systemInodes.set(name, ino.blkno);
      addEntry(sysDir, name, ino.blkno, (info.mode & S_IFDIR) ? OCFS2_FT_DIR : OCFS2_FT_REG_FILE);
    }
  }
  const sysBlk = (t: number, s = 0): number => sysInodes[t]![s]!.blkno;

  // Heartbeat area.
  const hbClusters = clustersFor(HEARTBEAT_BLOCKS * bs);
  const hbExtent = { blkno: c2b(gbm.mkfsAlloc(hbClusters, 'the heartbeat area')), clusters: hbClusters };

  // Orphan directories.
  const orphanDirs: DirData[] = [];
  for (let s = 0; s < g.slots; s++) {
    const ext = g.inlineData ? null : { blkno: c2b(gbm.mkfsAlloc(1, `orphan directory ${s}`)), clusters: 1 };
    const d = newDir(g.inlineData, ext, sysBlk(ORPHAN_DIR_SYSTEM_INODE, s));
    addEntry(d, '.', d.inodeBlkno, OCFS2_FT_DIR);
    addEntry(d, '..', sysIno.blkno, OCFS2_FT_DIR);
    orphanDirs.push(d);
  }

  /* -- inode construction ------------------------------------------------------------------------- */
  const inodeBase = (blkno: number, o: Partial<DinodeHeaderT>): { buf: Buffer; h: DinodeHeaderT } => {
    const buf = Buffer.alloc(bs);
    const h: DinodeHeaderT = {
      ...DinodeHeader.zero(),
      i_signature: signatureBytes(OCFS2_INODE_SIGNATURE),
      i_generation: gen, i_fs_generation: gen,
      i_suballoc_slot: OCFS2_INVALID_SLOT_U16,
      i_blkno: blkno,
      i_atime: p.now, i_ctime: p.now, i_mtime: p.now,
      ...o,
    };
    return { buf, h };
  };
  const finishInode = (blkno: number, buf: Buffer, h: DinodeHeaderT): void => {
    DinodeHeader.encode(h, buf, 0);
    ecc(buf, CHECK_OFFSET.dinode);
    putBlock(blkno, buf);
  };
  const extentRecs = (exts: Extent[]): ExtentRec[] => {
    const recs: ExtentRec[] = [];
    let cpos = 0;
    for (const e of exts) {
      recs.push({ cpos, clusters: e.clusters, flags: 0, reserved1: 0, blkno: e.blkno });
      cpos += e.clusters;
    }
    return recs;
  };
  const fileInode = (
    ino: { blkno: number; bit: number }, mode: number, flags: number, size: number, exts: Extent[], links = 1,
  ): void => {
    const { buf, h } = inodeBase(ino.blkno, {
      i_suballoc_bit: ino.bit, i_mode: mode, i_flags: flags, i_links_count: links, i_size: size,
      i_clusters: exts.reduce((s, e) => s + e.clusters, 0),
    });
    const cap = extentRecsPerInode(bs);
    if (exts.length > cap) throw new MkfsError(`a system file needs ${exts.length} extents; only ${cap} fit in an inode at this block size`);
    const recs = extentRecs(exts);
    writeInodeExtentList(buf, { ...emptyExtentList(cap), nextFreeRec: recs.length, recs });
    finishInode(ino.blkno, buf, h);
  };
  /** A phase-1 directory's inode and data blocks. */
  const dirInode = (ino: { blkno: number; bit: number }, dir: DirData, flags: number): void => {
    if (dir.inline) {
      const data = dir.blocks[0]!;
      // Trim the last entry to the inline area (format_file).
      const off = dir.lastOff;
      const de = DirEntryHeader.decode(data, off);
      if (off + dirRecLen(de.name_len) > maxInline) throw new MkfsError('directory does not fit inline');
      data.writeUInt16LE(de.rec_len - (bs - maxInline), off + 8);
      const { buf, h } = inodeBase(ino.blkno, {
        i_suballoc_bit: ino.bit, i_mode: S_IFDIR | 0o755, i_flags: flags, i_links_count: dir.links,
        i_size: maxInline, i_dyn_features: OCFS2_INLINE_DATA_FL,
      });
      writeInlineDataHeader(buf, maxInline);
      data.copy(buf, DINODE_ID2_OFFSET + 8, 0, maxInline);
      finishInode(ino.blkno, buf, h);
      return;
    }
    const ext = dir.extent!;
    fileInode(ino, S_IFDIR | 0o755, flags, dir.blocks.length * bs, [ext], dir.links);
    zero.push({ offset: ext.blkno * bs, length: ext.clusters * cs, what: 'directory' });
    dir.blocks.forEach((b, i) => {
      if (dirTrailerFor(dir)) ecc(b, dirBlockCheckOffset(bs));
      putBlock(ext.blkno + i, b);
    });
  };

  /* -- phase 2: libocfs2 on the new volume ----------------------------------------------------- */
  const sysFlags = OCFS2_VALID_FL | OCFS2_SYSTEM_FL;

  // Backup superblocks.
  const backups = g.backupSuper ? backupSuperblockBlknos(bs, g.blocks) : [];
  for (const b of backups) {
    const c = Math.floor(b / bpc);
    zero.push({ offset: c * cs, length: cs, what: 'backup superblock' });
    gbm.markCluster(c);
  }

  /** ocfs2_cached_inode_extend_allocation: grab clusters until satisfied, merging contiguous runs. */
  const extend = (exts: Extent[], clusters: number, what: string): void => {
    let left = clusters;
    while (left > 0) {
      const [c, n] = gbm.libAlloc(1, left, what);
      const last = exts[exts.length - 1];
      if (last && last.blkno + c2b(last.clusters) === c2b(c)) last.clusters += n;
      else exts.push({ blkno: c2b(c), clusters: n });
      left -= n;
    }
  };

  // Journals.
  const journalClusters = g.journalBytes / cs;
  const journals: Extent[][] = [];
  for (let s = 0; s < g.slots; s++) {
    const exts: Extent[] = [];
    extend(exts, journalClusters, `journal:${String(s).padStart(4, '0')}`);
    journals.push(exts);
    for (const e of exts) zero.push({ offset: e.blkno * bs, length: e.clusters * cs, what: 'journal' });
    const jsb = newJournalSuperblockBlock(bs, journalClusters * bpc, p.uuid, g.journal64 ? JBD2_FEATURE_INCOMPAT_64BIT : 0);
    putBlock(exts[0]!.blkno, jsb);
  }

  // Extent allocator pre-growth (ocfs2_grow_chain_allocator per slot).
  const subCpg = clustersPerGroup(bs, g.clusterBits);
  const subBgSize = groupBitmapSize(bs, true, discontig);
  const newAllocator = (): ChainAllocator => new ChainAllocator(subCpg, bpc, chainRecsPerInode(bs));
  const extentAllocs: ChainAllocator[] = [];
  const extentGroups = Math.ceil(g.extentAllocClusters / subCpg);
  for (let s = 0; s < g.slots; s++) {
    const a = newAllocator();
    for (let i = 0; i < extentGroups; i++) {
      const [c] = gbm.libAlloc(subCpg, subCpg, `extent_alloc:${String(s).padStart(4, '0')}`);
      a.addGroup(c2b(c), subBgSize);
    }
    extentAllocs.push(a);
  }

  // Slot map: one allocation covering max_slots entries, formatted to its end.
  const extendedSlotMap = (g.features.incompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) !== 0;
  const slotBytes = g.slots * (extendedSlotMap ? 8 : 2);
  const slotExts: Extent[] = [];
  extend(slotExts, clustersFor(slotBytes), 'the slot map');
  const slotMapSize = slotExts.reduce((s, e) => s + e.clusters, 0) * cs;
  {
    const entries = slotMapSize / (extendedSlotMap ? 8 : 2);
    const data = encodeSlotMap(new Array<number | null>(entries).fill(null), extendedSlotMap, slotMapSize);
    writeFileData(slotExts, data);
  }

  /** Write file data through its extents: zero the clusters, put whole blocks. */
  function writeFileData(exts: Extent[], data: Buffer): void {
    let off = 0;
    for (const e of exts) {
      zero.push({ offset: e.blkno * bs, length: e.clusters * cs, what: 'file data' });
      for (let b = 0; b < c2b(e.clusters) && off < data.length; b++, off += bs) {
        const blk = Buffer.alloc(bs);
        data.copy(blk, 0, off, Math.min(off + bs, data.length));
        putBlock(e.blkno + b, blk);
      }
    }
  }

  // Quota files.
  interface QuotaFile { exts: Extent[]; size: number; data: Buffer[] }
  const quota = new Map<number, QuotaFile>();
  const quotaBlock = (): Buffer => Buffer.alloc(bs);
  const finishQuotaBlock = (b: Buffer): Buffer => { ecc(b, quotaCheckOffset(bs)); return b; };
  const qtreeDepth = (() => {
    const epb = Math.floor((bs - 8) / 4);
    let entries = epb;
    let i = 1;
    for (; entries < 2 ** 32; i++) entries *= epb;
    return i;
  })();
  const rootClusters = rootExtent ? 1 : 0;
  const initQuota = (type: 0 | 1): void => {
    const gT = type === 0 ? USER_QUOTA_SYSTEM_INODE : GROUP_QUOTA_SYSTEM_INODE;
    const lT = type === 0 ? LOCAL_USER_QUOTA_SYSTEM_INODE : LOCAL_GROUP_QUOTA_SYSTEM_INODE;
    // Global file: header block + empty tree root.
    const gf: QuotaFile = { exts: [], size: 2 * bs, data: [quotaBlock(), quotaBlock()] };
    extend(gf.exts, clustersFor(2 * bs), 'a global quota file');
    quota.set(sysBlk(gT), gf);
    // Local files: header + one (empty) chunk header.
    for (let s = 0; s < g.slots; s++) {
      const lf: QuotaFile = { exts: [], size: 2 * bs, data: [quotaBlock(), quotaBlock()] };
      extend(lf.exts, clustersFor(2 * bs), 'a local quota file');
      DiskDqHeader.encode({ dqh_magic: OCFS2_LOCAL_QMAGICS[type], dqh_version: 0 }, lf.data[0]!, 0);
      LocalDiskDqinfo.encode({ dqi_flags: OLQF_CLEAN, dqi_chunks: 1, dqi_blocks: 2 }, lf.data[0]!, QUOTA_INFO_OFFSET);
      quota.set(sysBlk(lT, s), lf);
    }
  };
  if (usrQuota) initQuota(0);
  if (grpQuota) initQuota(1);
  /** ocfs2_compute_quota_usage + ocfs2_write_dquot for id 0 (only the root dir counts). */
  const writeDquot = (type: 0 | 1): void => {
    const gf = quota.get(sysBlk(type === 0 ? USER_QUOTA_SYSTEM_INODE : GROUP_QUOTA_SYSTEM_INODE))!;
    const newBlock = (): number => {
      const fileBlocks = c2b(gf.exts.reduce((s, e) => s + e.clusters, 0));
      if (gf.data.length === fileBlocks) extend(gf.exts, 1, 'a global quota file');
      gf.data.push(quotaBlock());
      return gf.data.length - 1;
    };
    // Tree: root (block 1) -> one new block per level -> leaf.  Id 0 uses index 0 everywhere.
    let parent = QT_TREEOFF;
    for (let depth = 1; depth < qtreeDepth; depth++) {
      const blk = newBlock();
      gf.data[parent]!.writeUInt32LE(blk, 0);
      parent = blk;
    }
    const leaf = newBlock();
    gf.data[parent]!.writeUInt32LE(leaf, 0);
    DiskDqdbHeader.encode({ dqdh_next_free: 0, dqdh_prev_free: 0, dqdh_entries: 1, dqdh_pad1: 0, dqdh_pad2: 0 }, gf.data[leaf]!, 0);
    GlobalDiskDqblk.encode({
      ...GlobalDiskDqblk.zero(), dqb_id: 0, dqb_curinodes: 1n, dqb_curspace: BigInt(rootClusters * cs),
    }, gf.data[leaf]!, DiskDqdbHeader.size);
    DiskDqHeader.encode({ dqh_magic: OCFS2_GLOBAL_QMAGICS[type], dqh_version: 0 }, gf.data[0]!, 0);
    GlobalDiskDqinfo.encode({
      dqi_bgrace: OCFS2_DEF_BLOCK_GRACE, dqi_igrace: OCFS2_DEF_INODE_GRACE, dqi_syncms: OCFS2_DEF_QUOTA_SYNC,
      dqi_blocks: gf.data.length, dqi_free_blk: 0, dqi_free_entry: leaf,
    }, gf.data[0]!, QUOTA_INFO_OFFSET);
    gf.size = gf.data.length * bs;
  };
  if (usrQuota) writeDquot(0);
  if (grpQuota) writeDquot(1);
  for (const qf of quota.values()) {
    qf.data.forEach(finishQuotaBlock);
    writeFileData(qf.exts, Buffer.concat(qf.data));
  }

  // lost+found: a new inode from inode_alloc:0000, which gets its first group now.
  const inodeAllocs: ChainAllocator[] = [];
  for (let s = 0; s < g.slots; s++) inodeAllocs.push(newAllocator());
  {
    const [c] = gbm.libAlloc(subCpg, subCpg, 'inode_alloc:0000');
    inodeAllocs[0]!.addGroup(c2b(c), subBgSize);
  }
  const [lfBlkno, lfGd, lfBit] = inodeAllocs[0]!.allocBlock()!;
  {
    const { buf, h } = inodeBase(lfBlkno, {
      i_suballoc_slot: 0, i_suballoc_loc: lfGd, i_suballoc_bit: lfBit, i_mode: S_IFDIR | 0o755,
      i_links_count: 2, i_flags: OCFS2_VALID_FL,
    });
    if (g.inlineData) {
      h.i_dyn_features = OCFS2_INLINE_DATA_FL;
      h.i_size = maxInline;
      writeInlineDataHeader(buf, maxInline);
      initDotEntries(buf, { blkno: lfBlkno, start: DINODE_ID2_OFFSET + 8, size: maxInline }, lfBlkno, rootIno.blkno);
    } else {
      const exts: Extent[] = [];
      extend(exts, 1, 'lost+found');
      const e = exts[0]!;
      zero.push({ offset: e.blkno * bs, length: cs, what: 'lost+found' });
      const blk = Buffer.alloc(bs);
      const size = trailers ? dirTrailerOffset(bs) : bs;
      initDotEntries(blk, { blkno: e.blkno, start: 0, size }, lfBlkno, rootIno.blkno);
      if (trailers) {
        initDirTrailer(blk, bs, { blkno: e.blkno, parentDinode: lfBlkno, freeRecLen: 0 });
        ecc(blk, dirBlockCheckOffset(bs));
      }
      putBlock(e.blkno, blk);
      h.i_size = bs;
      h.i_clusters = 1;
      const recs = extentRecs(exts);
      writeInodeExtentList(buf, { ...emptyExtentList(extentRecsPerInode(bs)), nextFreeRec: 1, recs });
    }
    finishInode(lfBlkno, buf, h);
  }
  // Link it into the root directory (the root gains a link for its "..").
  rootDir.links++;
  {
    const name = Buffer.from('lost+found');
    if (rootDir.inline) {
      // Insert before the phase-1 trim (dirInode trims the last entry to the
      // inline area), which gives the bytes ocfs2_link leaves in the inline dir.
      const data = rootDir.blocks[0]!;
      const at = insertDirEntry(data, { blkno: rootIno.blkno, start: 0, size: bs }, { inode: lfBlkno, fileType: OCFS2_FT_DIR, name });
      if (at === undefined || at + dirRecLen(name.length) > maxInline) throw new MkfsError('no room for lost+found in the root directory');
      rootDir.lastOff = at;
    } else {
      const blk = rootDir.blocks[0]!;
      const area = { blkno: rootExtent!.blkno, start: 0, size: trailers ? dirTrailerOffset(bs) : bs };
      if (insertDirEntry(blk, area, { inode: lfBlkno, fileType: OCFS2_FT_DIR, name }) === undefined) {
        throw new MkfsError('no room for lost+found in the root directory');
      }
    }
  }

  /* -- write every phase-1 inode in its final state ------------------------------------------ */
  dirInode(rootIno, rootDir, sysFlags);
  dirInode(sysIno, sysDir, sysFlags);
  for (let t = 0; t < NUM_SYSTEM_INODES; t++) {
    if (skip(t)) continue;
    const info = SYSTEM_INODES[t]!;
    sysInodes[t]!.forEach((ino, s) => {
      const flags = sysFlags | info.mkfsFlags;
      switch (t) {
        case BAD_BLOCK_SYSTEM_INODE:
          fileInode(ino, info.mode, flags, 0, []);
          break;
        case GLOBAL_INODE_ALLOC_SYSTEM_INODE: {
          const { buf, h } = inodeBase(ino.blkno, {
            i_suballoc_bit: ino.bit, i_mode: info.mode, i_flags: flags, i_links_count: 1,
            i_clusters: sgClusters, i_size: sgClusters * cs,
          });
          writeInodeChainList(buf, {
            cpg: sgBits / bpc, bpc, count: chainRecsPerInode(bs), nextFreeRec: 1, reserved1: 0n,
            recs: [{ c_free: sgBits - sysGroup.used, c_total: sgBits, c_blkno: sgBlkno }],
          });
          DinodeHeader.encode(h, buf, 0);
          // i_used/i_total live in id1 inside the header: encode header first, then id1.
          writeId1Bitmap(buf, { i_used: sysGroup.used, i_total: sgBits });
          ecc(buf, CHECK_OFFSET.dinode);
          putBlock(ino.blkno, buf);
          // The group descriptor itself.
          const gd = Buffer.alloc(bs);
          GroupDescHeader.encode({
            ...GroupDescHeader.zero(), bg_signature: signatureBytes(OCFS2_GROUP_DESC_SIGNATURE),
            bg_size: bs - GROUP_BITMAP_OFFSET, bg_bits: sgBits, bg_free_bits_count: sgBits - sysGroup.used, bg_chain: 0,
            bg_generation: gen, bg_parent_dinode: ino.blkno, bg_blkno: sgBlkno,
          }, gd, 0);
          Buffer.from(sysGroup.bitmap).copy(gd, GROUP_BITMAP_OFFSET);
          ecc(gd, CHECK_OFFSET.groupDesc);
          putBlock(sgBlkno, gd);
          break;
        }
        case SLOT_MAP_SYSTEM_INODE:
          fileInode(ino, info.mode, flags, slotMapSize, slotExts);
          break;
        case HEARTBEAT_SYSTEM_INODE:
          fileInode(ino, info.mode, flags, HEARTBEAT_BLOCKS * bs, [hbExtent]);
          zero.push({ offset: hbExtent.blkno * bs, length: hbClusters * cs, what: 'heartbeat' });
          break;
        case GLOBAL_BITMAP_SYSTEM_INODE:
          writeGlobalBitmap(ino, flags, info.mode);
          break;
        case USER_QUOTA_SYSTEM_INODE:
        case GROUP_QUOTA_SYSTEM_INODE:
        case LOCAL_USER_QUOTA_SYSTEM_INODE:
        case LOCAL_GROUP_QUOTA_SYSTEM_INODE: {
          const qf = quota.get(ino.blkno)!;
          fileInode(ino, info.mode, flags, qf.size, qf.exts);
          break;
        }
        case ORPHAN_DIR_SYSTEM_INODE:
          dirInode(ino, orphanDirs[s]!, flags);
          break;
        case EXTENT_ALLOC_SYSTEM_INODE:
          writeChainAllocator(ino, flags, info.mode, extentAllocs[s]!);
          break;
        case INODE_ALLOC_SYSTEM_INODE:
          writeChainAllocator(ino, flags, info.mode, inodeAllocs[s]!);
          break;
        case JOURNAL_SYSTEM_INODE:
          fileInode(ino, info.mode, flags, g.journalBytes, journals[s]!);
          break;
        case LOCAL_ALLOC_SYSTEM_INODE: {
          const { buf, h } = inodeBase(ino.blkno, { i_suballoc_bit: ino.bit, i_mode: info.mode, i_flags: flags, i_links_count: 1 });
          const laSize = localAllocBitmapCapacity(bs, DINODE_ID2_OFFSET);
          writeInodeLocalAlloc(buf, {
            header: { la_bm_off: 0, la_size: laSize, la_reserved1: 0, la_reserved2: 0n }, bitmap: Buffer.alloc(laSize),
          });
          finishInode(ino.blkno, buf, h);
          break;
        }
        case TRUNCATE_LOG_SYSTEM_INODE: {
          const { buf, h } = inodeBase(ino.blkno, { i_suballoc_bit: ino.bit, i_mode: info.mode, i_flags: flags, i_links_count: 1 });
          writeInodeTruncateLog(buf, { count: truncateRecsFitting(bs, DINODE_ID2_OFFSET), used: 0, reserved1: 0, recs: [] });
          finishInode(ino.blkno, buf, h);
          break;
        }
        default:
          throw new MkfsError(`no formatter for system inode type ${t}`);
      }
    });
  }

  function writeChainAllocator(ino: { blkno: number; bit: number }, flags: number, mode: number, a: ChainAllocator): void {
    const { buf, h } = inodeBase(ino.blkno, {
      i_suballoc_bit: ino.bit, i_mode: mode, i_flags: flags, i_links_count: 1,
      i_clusters: a.clusters, i_size: a.clusters * cs,
    });
    const recs = a.chainRecs();
    writeInodeChainList(buf, { cpg: a.cpg, bpc: a.bpc, count: a.count, nextFreeRec: recs.length, reserved1: 0n, recs });
    DinodeHeader.encode(h, buf, 0);
    writeId1Bitmap(buf, { i_used: a.usedBits(), i_total: a.total() });
    ecc(buf, CHECK_OFFSET.dinode);
    putBlock(ino.blkno, buf);
    for (const grp of a.groups) {
      const gd = Buffer.alloc(bs);
      GroupDescHeader.encode({
        ...GroupDescHeader.zero(), bg_signature: signatureBytes(OCFS2_GROUP_DESC_SIGNATURE),
        bg_size: grp.bgSize, bg_bits: grp.bits, bg_free_bits_count: grp.free, bg_chain: grp.chain,
        bg_generation: gen, bg_next_group: grp.next, bg_parent_dinode: ino.blkno, bg_blkno: grp.blkno,
      }, gd, 0);
      Buffer.from(grp.bitmap).copy(gd, GROUP_BITMAP_OFFSET, 0, grp.bgSize);
      ecc(gd, CHECK_OFFSET.groupDesc);
      putBlock(grp.blkno, gd);
    }
  }

  function writeGlobalBitmap(ino: { blkno: number; bit: number }, flags: number, mode: number): void {
    const { buf, h } = inodeBase(ino.blkno, {
      i_suballoc_bit: ino.bit, i_mode: mode, i_flags: flags, i_links_count: 1,
      i_clusters: g.clusters, i_size: g.bytes,
    });
    const recs: ChainRecT[] = [];
    for (let c = 0; c < gbm.numChains; c++) {
      let free = 0;
      let total = 0;
      for (let i = c; i < gbm.groups.length; i += gbm.cpi) { free += gbm.groups[i]!.free; total += gbm.groups[i]!.bits; }
      recs.push({ c_free: free, c_total: total, c_blkno: gbm.groups[c]!.blkno });
    }
    writeInodeChainList(buf, {
      cpg: 8 * (bs - GROUP_BITMAP_OFFSET), bpc: 1, count: chainRecsPerInode(bs), nextFreeRec: recs.length,
      reserved1: 0n, recs,
    });
    DinodeHeader.encode(h, buf, 0);
    writeId1Bitmap(buf, { i_used: gbm.used(), i_total: g.clusters });
    ecc(buf, CHECK_OFFSET.dinode);
    putBlock(ino.blkno, buf);
    for (const grp of gbm.groups) {
      // write_bitmap_data writes a whole zeroed cluster around each descriptor.
      zero.push({ offset: grp.blkno * bs, length: cs, what: 'bitmap group' });
      const gd = Buffer.alloc(bs);
      GroupDescHeader.encode({
        ...GroupDescHeader.zero(), bg_signature: signatureBytes(OCFS2_GROUP_DESC_SIGNATURE),
        bg_size: bs - GROUP_BITMAP_OFFSET, bg_bits: grp.bits, bg_free_bits_count: grp.free, bg_chain: grp.chain,
        bg_generation: gen, bg_next_group: grp.next, bg_parent_dinode: ino.blkno, bg_blkno: grp.blkno,
      }, gd, 0);
      Buffer.from(grp.bitmap).copy(gd, GROUP_BITMAP_OFFSET, 0, Math.min(grp.bitmap.length, bs - GROUP_BITMAP_OFFSET));
      ecc(gd, CHECK_OFFSET.groupDesc);
      putBlock(grp.blkno, gd);
    }
  }

  /* -- superblock and backups ----------------------------------------------------------------- */
  let incompat = g.features.incompat;
  let compat = g.features.compat & ~OCFS2_FEATURE_COMPAT_BACKUP_SB;
  const roCompat = g.features.roCompat;
  if (g.mount === 'local') incompat |= OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT;
  const ciStack = Buffer.alloc(4);
  const ciCluster = Buffer.alloc(16);
  let ciFlags = 0;
  if (p.clusterStack) {
    incompat |= OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP;
    if (!(incompat & OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) {
      incompat |= p.clusterStack === OCFS2_CLASSIC_CLUSTER_STACK
        ? OCFS2_FEATURE_INCOMPAT_CLUSTERINFO : OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK;
    }
    ciStack.write(p.clusterStack, 0, 4, 'latin1');
    ciCluster.write(p.clusterName ?? '', 0, 16, 'latin1');
    ciFlags = p.globalHeartbeat ? OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT : 0;
  }
  // format_backup_super sets the flag even when no backup fits the volume.
  if (g.backupSuper) compat |= OCFS2_FEATURE_COMPAT_BACKUP_SB;
  const label = Buffer.alloc(64);
  label.write(p.label, 0, 63, 'utf8');
  const sbFields = {
    ...SuperBlock.zero(),
    s_major_rev_level: OCFS2_MAJOR_REV_LEVEL, s_minor_rev_level: OCFS2_MINOR_REV_LEVEL,
    s_max_mnt_count: 20, s_lastcheck: p.now, s_creator_os: 0,
    s_feature_compat: compat, s_feature_incompat: incompat, s_feature_ro_compat: roCompat,
    s_root_blkno: rootIno.blkno, s_system_dir_blkno: sysIno.blkno,
    s_blocksize_bits: g.blockBits, s_clustersize_bits: g.clusterBits, s_max_slots: g.slots,
    s_first_cluster_group: firstGroupBlkno,
    s_label: label, s_uuid: Buffer.from(p.uuid),
    ci_stack: ciStack, ci_stackflags: ciFlags, ci_cluster: ciCluster,
    s_xattr_inline_size: (incompat & OCFS2_FEATURE_INCOMPAT_XATTR) ? OCFS2_MIN_XATTR_INLINE_SIZE : 0,
    s_uuid_hash: (incompat & (OCFS2_FEATURE_INCOMPAT_XATTR | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS)) ? uuidHash(p.uuid) : 0,
    s_dx_seed0: (incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) ? p.dxSeed[0] >>> 0 : 0,
    s_dx_seed1: (incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) ? p.dxSeed[1] >>> 0 : 0,
    s_dx_seed2: (incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) ? p.dxSeed[2] >>> 0 : 0,
  };
  const superAt = (blkno: number): Buffer => {
    const buf = Buffer.alloc(bs);
    DinodeHeader.encode({
      ...DinodeHeader.zero(), i_signature: signatureBytes(OCFS2_SUPER_BLOCK_SIGNATURE),
      i_suballoc_slot: OCFS2_INVALID_SLOT_U16, i_suballoc_bit: 0xffff,
      i_generation: gen, i_fs_generation: gen, i_atime: 0, i_ctime: p.now, i_mtime: p.now,
      i_blkno: blkno, i_flags: OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_SUPER_BLOCK_FL, i_clusters: g.clusters,
    }, buf, 0);
    SuperBlock.encode(sbFields, buf, SUPERBLOCK_OFFSET);
    ecc(buf, CHECK_OFFSET.dinode);
    return buf;
  };
  putBlock(OCFS2_SUPER_BLOCK_BLKNO, superAt(OCFS2_SUPER_BLOCK_BLKNO));
  for (const b of backups) putBlock(b, superAt(b));

  return {
    blocks, zero, leading: leadingSpace(bs),
    superblock: { blkno: OCFS2_SUPER_BLOCK_BLKNO, incompat, compat, roCompat },
    systemInodes, rootBlkno: rootIno.blkno, sysdirBlkno: sysIno.blkno, lostFoundBlkno: lfBlkno,
    backups, journals,
    summary: {
      groups: g.groups, tailGroupBits: g.tailGroupBits, globalCpg: g.globalCpg,
      extentAllocBytes: extentGroups * subCpg * cs, extentAllocGroups: extentGroups,
    },
  };
}

/** Flags mkfs uses, exported for tests. */
export const MKFS_INODE_FLAGS = {
  journal: OCFS2_JOURNAL_FL, heartbeat: OCFS2_HEARTBEAT_FL, localAlloc: OCFS2_LOCAL_ALLOC_FL | OCFS2_BITMAP_FL,
  chain: OCFS2_CHAIN_FL | OCFS2_BITMAP_FL, dealloc: OCFS2_DEALLOC_FL, quota: OCFS2_QUOTA_FL,
};
