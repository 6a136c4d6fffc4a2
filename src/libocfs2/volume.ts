/**
 * An opened OCFS2 volume: superblock, system directory, validated metadata
 * reads (signature, self block number, fs generation, and the metaecc block
 * check when the volume has it), and the journal state of every slot.
 *
 * This is the entry point that mkfs/check/inspect and the FUSE daemon share.
 */
import { BlockDevice } from './io';
import { Ocfs2CorruptError, Ocfs2FormatError, Ocfs2UnsupportedError, PosixError } from './errors';
import {
  OCFS2_FEATURE_COMPAT_SUPP, OCFS2_FEATURE_INCOMPAT_SUPP, OCFS2_FEATURE_RO_COMPAT_SUPP,
  OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT,
  OCFS2_FEATURE_INCOMPAT_XATTR, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP,
  OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG, OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG, OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV,
  featureNames, unsupportedBits,
} from './constants';
import { probeSuperblock, type Superblock } from './structs/superblock';
import { decodeInode, DINODE_ID1_OFFSET, inodeChainList, type Inode } from './structs/dinode';
import { validateGroupDesc } from './structs/group';
import { decodeExtentBlock, type ExtentBlock } from './structs/extent';
import { CHECK_OFFSET, verifyBlockCheck } from './blockcheck';
import { uuidHash } from './dirhash';
import { systemFileName, JOURNAL_SYSTEM_INODE } from './sysfiles';
import { iterateDirectory } from './directory';
import { recoverSlotJournal, replayJournalToDisk } from './journal';

/** An inode together with the block it was decoded from. */
export interface InodeBlock {
  inode: Inode;
  /** The raw inode block (shared with the cache: do not modify). */
  buf: Buffer;
}

export interface VolumeOpenOptions {
  readOnly: boolean;
  cacheBytes?: number;
  /**
   * What to do with a slot whose journal needs recovery when the volume is
   * opened read-only: 'overlay' replays it in memory (nothing is written),
   * 'refuse' fails the open naming the slot, 'ignore' reads the stale disk.
   */
  dirtyJournal?: 'overlay' | 'refuse' | 'ignore';
  /** Called with human-readable warnings (default: ignored). */
  warn?: (msg: string) => void;
  /** Read the superblock from backup N (1..6) instead of block 2 (fsck.ocfs2 -b/-r). */
  backupSuperblock?: number;
}

export interface JournalState {
  slot: number;
  blkno: number;
  /** ij_flags has OCFS2_JOURNAL_DIRTY_FL. */
  dirty: boolean;
}

export class Volume {
  readonly blockSize: number;
  readonly blockBits: number;
  readonly clusterSize: number;
  readonly clusterBits: number;
  readonly uuidHash: number;
  private systemFiles = new Map<string, number>();
  /** Where corruption that is skipped rather than failed is reported (the open's `warn`). */
  warn: (msg: string) => void = () => undefined;
  /** Slots whose journals were replayed at open (in memory when read-only, to disk when read-write). */
  replayedSlots: number[] = [];
  /**
   * Read-write opens: slots whose journal dinode was dirty and was replayed to
   * disk; their dirty flag is still set until the rest of their recovery is done.
   */
  recoveredSlots: number[] = [];
  private readonly verified = new WeakSet<Buffer>();

  private constructor(readonly dev: BlockDevice, readonly sb: Superblock, readonly sbBlock: Buffer) {
    this.blockSize = sb.blocksize;
    this.blockBits = sb.raw.s_blocksize_bits;
    this.clusterSize = sb.clustersize;
    this.clusterBits = sb.raw.s_clustersize_bits;
    // s_uuid_hash is only set with xattr/indexed-dirs; the kernel recomputes it from the uuid.
    this.uuidHash = sb.raw.s_uuid_hash || uuidHash(sb.uuid);
  }

  static async open(devPath: string, opts: VolumeOpenOptions): Promise<Volume> {
    const dev = await BlockDevice.open(devPath, { readOnly: opts.readOnly, cacheBytes: opts.cacheBytes });
    try {
      if (dev.sizeBytes < 8192) throw new Ocfs2FormatError(`${devPath}: too small to be an OCFS2 volume (${dev.sizeBytes} bytes)`);
      const probe = await probeSuperblock((off, len) => dev.readAt(off, len), { backup: opts.backupSuperblock }).catch((e: unknown) => {
        if (e instanceof Ocfs2FormatError) throw new Ocfs2FormatError(`${devPath}: ${e.message}`);
        throw e;
      });
      dev.setBlockSize(probe.blocksize);
      const vol = new Volume(dev, probe.sb, probe.block);
      if (opts.warn) vol.warn = opts.warn;
      vol.checkFeatures(opts.readOnly);
      if (vol.sb.clusters * (vol.clusterSize / vol.blockSize) > dev.blockCount) {
        opts.warn?.(`volume claims ${vol.sb.clusters} clusters but the device holds only ${dev.blockCount} blocks (truncated image?)`);
      }
      await vol.loadSystemDirectory();
      await vol.handleJournals(opts);
      return vol;
    } catch (e) {
      await dev.close();
      throw e;
    }
  }

  private checkFeatures(readOnly: boolean): void {
    const sb = this.sb;
    if (sb.incompat & OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV) {
      throw new Ocfs2UnsupportedError('this is a heartbeat-only device (heartbeat-device feature): it holds no filesystem');
    }
    if (sb.incompat & (OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG | OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG)) {
      throw new Ocfs2UnsupportedError('an aborted resize or tunefs operation is pending on this volume: run fsck.ocfs2 first');
    }
    const badIncompat = unsupportedBits(sb.incompat, OCFS2_FEATURE_INCOMPAT_SUPP);
    if (badIncompat) throw new Ocfs2UnsupportedError(`unsupported incompat features 0x${badIncompat.toString(16)}`);
    const badRo = unsupportedBits(sb.roCompat, OCFS2_FEATURE_RO_COMPAT_SUPP);
    if (badRo && !readOnly) throw new Ocfs2UnsupportedError(`unsupported ro-compat features 0x${badRo.toString(16)}: mount read-only`);
    void OCFS2_FEATURE_COMPAT_SUPP; // unknown compat features are harmless by definition
  }

  get featureList(): string[] { return featureNames(this.sb.compat, this.sb.incompat, this.sb.roCompat); }
  get metaEcc(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) !== 0; }
  get indexedDirs(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) !== 0; }
  get localMount(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) !== 0; }
  get xattrs(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_XATTR) !== 0; }
  get inlineData(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_INLINE_DATA) !== 0; }
  get extendedSlotMap(): boolean { return (this.sb.incompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) !== 0; }
  get rootBlkno(): number { return this.sb.raw.s_root_blkno; }
  get systemDirBlkno(): number { return this.sb.raw.s_system_dir_blkno; }
  get maxSlots(): number { return this.sb.raw.s_max_slots; }
  get clusterBlocks(): number { return this.clusterSize / this.blockSize; }

  /**
   * A metadata block, with its block check verified on metaecc volumes.
   * `checkOffset` is where the structure keeps its ocfs2_block_check
   * (null: the structure has none).  A single flipped bit is corrected in the
   * cached copy, as the kernel does.
   */
  async readMetaBlock(blkno: number, checkOffset: number | null): Promise<Buffer> {
    const buf = await this.dev.readBlock(blkno);
    if (this.metaEcc && checkOffset !== null && !this.verified.has(buf)) {
      verifyBlockCheck(buf, checkOffset, blkno);
      this.verified.add(buf);
    }
    return buf;
  }

  /** Read and validate an inode. */
  async readInode(blkno: number): Promise<InodeBlock> {
    if (blkno <= 2 || blkno >= this.dev.blockCount) {
      throw new Ocfs2CorruptError(blkno, 'inode block number out of range', `volume has ${this.dev.blockCount} blocks`);
    }
    const buf = await this.readMetaBlock(blkno, CHECK_OFFSET.dinode);
    return { inode: decodeInode(buf, blkno, this.sb.fsGeneration), buf };
  }

  /** Read and validate an extent block. */
  async readExtentBlock(blkno: number): Promise<ExtentBlock> {
    const buf = await this.readMetaBlock(blkno, CHECK_OFFSET.extentBlock);
    return decodeExtentBlock(buf, blkno, { fsGeneration: this.sb.fsGeneration });
  }

  /**
   * Walk every group descriptor of the global bitmap's chains, validating
   * each (signature, self block number, generation, parent, block check) —
   * as the kernel does when it reads a group.  Returns the first problem
   * found, or null.  Bounded by the number of groups the volume can hold.
   */
  async checkGlobalBitmap(): Promise<Ocfs2CorruptError | null> {
    const bmBlk = this.systemFile('global_bitmap');
    try {
      const bm = await this.readInode(bmBlk);
      const cl = inodeChainList(bm.buf, bmBlk);
      const maxGroups = Math.ceil(this.sb.clusters / Math.max(1, cl.cpg)) + 1;
      let seen = 0;
      for (const rec of cl.recs) {
        for (let g = rec.c_blkno; g !== 0; seen++) {
          if (seen > maxGroups) throw new Ocfs2CorruptError(g, 'global bitmap chain loops or is too long');
          const buf = await this.readMetaBlock(g, CHECK_OFFSET.groupDesc);
          const h = validateGroupDesc(buf, g, { fsGeneration: this.sb.fsGeneration, parentDinode: bmBlk });
          g = h.bg_next_group;
        }
      }
      return null;
    } catch (e) {
      if (e instanceof Ocfs2CorruptError) return e;
      throw e;
    }
  }

  /** Block number of a system file by name ("global_bitmap", "journal:0000", ...). */
  systemFile(name: string): number {
    const b = this.systemFiles.get(name);
    if (b === undefined) throw new PosixError('ENOENT', `system file ${name} not found`);
    return b;
  }

  systemFileNames(): string[] { return [...this.systemFiles.keys()]; }

  private async loadSystemDirectory(): Promise<void> {
    const sysdir = await this.readInode(this.systemDirBlkno);
    for await (const e of iterateDirectory(this, sysdir)) {
      const name = e.name.toString('latin1');
      if (name !== '.' && name !== '..') this.systemFiles.set(name, e.inode);
    }
  }

  /** Journal state of every slot (from each journal dinode's ij_flags). */
  async journalStates(): Promise<JournalState[]> {
    const out: JournalState[] = [];
    for (let slot = 0; slot < this.maxSlots; slot++) {
      const name = systemFileName(JOURNAL_SYSTEM_INODE, slot);
      const blkno = this.systemFiles.get(name);
      if (blkno === undefined) continue;
      const { buf } = await this.readInode(blkno);
      out.push({ slot, blkno, dirty: (buf.readUInt32LE(DINODE_ID1_OFFSET) & 0x1) !== 0 });
    }
    return out;
  }

  private async handleJournals(opts: VolumeOpenOptions): Promise<void> {
    const dirty = (await this.journalStates()).filter((j) => j.dirty);
    if (dirty.length === 0) return;
    const names = dirty.map((j) => `slot ${j.slot}`).join(', ');
    const mode = opts.dirtyJournal ?? 'overlay';
    if (mode === 'refuse') {
      throw new Ocfs2FormatError(`the journal of ${names} needs recovery; mount read-write (or run fsck.ocfs2) to replay it`);
    }
    if (mode === 'ignore') {
      opts.warn?.(`the journal of ${names} needs recovery; showing the volume without it`);
      return;
    }
    if (!this.dev.readOnly) {
      // Read-write: replay each dirty journal to disk (the dirty flag stays set
      // until the mount has finished that slot's recovery; see rwmount.ts).
      for (const j of dirty) {
        const out = await replayJournalToDisk(this, j.slot, j.blkno);
        this.recoveredSlots.push(j.slot);
        if (out.needed) this.replayedSlots.push(j.slot);
      }
      this.dev.invalidate();
    } else {
      const merged = new Map<number, Buffer>();
      for (const j of dirty) {
        const res = await recoverSlotJournal(this, j.blkno);
        for (const [b, data] of res.blocks) merged.set(b, data);
        if (res.needed) this.replayedSlots.push(j.slot);
      }
      this.dev.setOverlay(merged);
      opts.warn?.(`the journal of ${names} needs recovery: replayed in memory (${merged.size} blocks); the device is not modified`);
    }
    // Directory contents may have changed under the overlay.
    this.systemFiles.clear();
    await this.loadSystemDirectory();
  }

  async close(): Promise<void> {
    await this.dev.close();
  }
}
