/**
 * One slot's journal file (`journal:NNNN`) opened for writing: the JBD2
 * geometry read from its superblock (the features mkfs or the kernel set:
 * 64-bit tags, CSUM v2/v3, COMPAT_CHECKSUM, REVOKE), the mapping from
 * journal blocks to physical filesystem blocks (journal block n = logical
 * block n of the file), log and superblock writes, and the journal dinode's
 * ij_flags / ij_recovery_generation (written in place with metaecc, as
 * ocfs2_journal_toggle_dirty does: the journal dinode is never journaled).
 */
import { allLeafExtents } from '../extentmap';
import { inodeExtentList, readId1Journal, writeId1Journal } from '../structs/dinode';
import { CHECK_OFFSET, updateBlockCheck } from '../blockcheck';
import { Ocfs2CorruptError, Ocfs2Error } from '../errors';
import { JOURNAL_SYSTEM_INODE, systemFileName } from '../sysfiles';
import {
  JBD2_SUPERBLOCK_SIZE, OCFS2_JOURNAL_DIRTY_FL, checkJournalSuperblock, featuresOf, journalReaderFromMapping,
  journalSuperblock, mapFromExtents, readJournalSuperblockBytes, superblockChecksum, hasCsumV2or3,
  type JournalFeatures, type JournalReader, type JournalSuperblock,
} from '../jbd2';
import type { Volume } from '../volume';

export class JournalFile {
  private constructor(
    readonly vol: Volume,
    readonly slot: number,
    /** Block number of the journal dinode. */
    readonly inodeBlkno: number,
    readonly reader: JournalReader,
    private readonly mapLogical: (n: number) => number,
    /** Superblock bytes (whole journal blocks covering 1024 bytes), kept current. */
    private raw: Buffer,
    public sb: JournalSuperblock,
  ) {}

  static async open(vol: Volume, slot: number): Promise<JournalFile> {
    const blkno = vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, slot));
    const ino = await vol.readInode(blkno);
    const extents = await allLeafExtents(vol, inodeExtentList(ino.buf, blkno), blkno);
    const mapLogical = mapFromExtents(extents, vol.clusterSize, vol.blockSize);
    const reader = journalReaderFromMapping({
      blockSize: vol.blockSize,
      maxLen: Math.floor(ino.inode.size / vol.blockSize),
      mapLogical,
      // Uncached: the log is written behind the cache's back.
      readFsBlock: (b) => vol.dev.readBlocks(b, 1),
    });
    const raw = await readJournalSuperblockBytes(reader);
    const g = checkJournalSuperblock(reader, raw);
    return new JournalFile(vol, slot, blkno, reader, mapLogical, raw, g.sb);
  }

  get blockSize(): number { return this.vol.blockSize; }
  get features(): JournalFeatures { return featuresOf(this.sb); }
  /** j_first .. j_last-1 is the circular log. */
  get first(): number { return this.sb.s_first; }
  get last(): number { return this.sb.s_maxlen; }
  get logBlocks(): number { return this.last - this.first; }

  /** Physical filesystem block of journal block n. */
  phys(n: number): number {
    const p = this.mapLogical(n);
    if (!Number.isInteger(p) || p < 0) throw new Ocfs2CorruptError(this.inodeBlkno, 'journal block unmapped', `journal block ${n}`);
    return p;
  }

  /** Write consecutive journal blocks starting at log position n (no wrap: the caller splits). */
  async writeLog(n: number, blocks: Buffer[]): Promise<void> {
    let i = 0;
    while (i < blocks.length) {
      const p0 = this.phys(n + i);
      let j = i + 1;
      while (j < blocks.length && this.phys(n + j) === p0 + (j - i)) j++;
      await this.vol.dev.writeBlocks(p0, j - i === 1 ? blocks[i]! : Buffer.concat(blocks.slice(i, j)));
      i = j;
    }
  }

  /** Rewrite the superblock with new dynamic fields (checksum recomputed with CSUM v2/v3). */
  async writeSuperblock(upd: { start?: number; sequence?: number; incompatSet?: number }): Promise<void> {
    const next: JournalSuperblock = { ...this.sb };
    if (upd.start !== undefined) next.s_start = upd.start;
    if (upd.sequence !== undefined) next.s_sequence = upd.sequence >>> 0;
    if (upd.incompatSet) next.s_feature_incompat = (next.s_feature_incompat | upd.incompatSet) >>> 0;
    const out = Buffer.from(this.raw);
    journalSuperblock.encode(next, out);
    if (hasCsumV2or3(featuresOf(next))) {
      next.s_checksum = superblockChecksum(out);
      out.writeUInt32BE(next.s_checksum, journalSuperblock.offsetOf('s_checksum'));
    }
    const bs = this.blockSize;
    const nblocks = Math.max(1, Math.ceil(JBD2_SUPERBLOCK_SIZE / bs));
    for (let i = 0; i < nblocks; i++) await this.vol.dev.writeBlocks(this.phys(i), out.subarray(i * bs, (i + 1) * bs));
    this.raw = out;
    this.sb = next;
  }

  /** ij_flags / ij_recovery_generation of the journal dinode. */
  async journalFlags(): Promise<{ flags: number; recoveryGeneration: number }> {
    const { buf } = await this.vol.readInode(this.inodeBlkno);
    const j = readId1Journal(buf);
    return { flags: j.ij_flags, recoveryGeneration: j.ij_recovery_generation };
  }

  /**
   * Set or clear OCFS2_JOURNAL_DIRTY_FL (and bump ij_recovery_generation when
   * asked), written in place and synced.
   */
  async setDirty(dirty: boolean, bumpRecoveryGeneration = false): Promise<void> {
    await setJournalDinodeFlags(this.vol, this.inodeBlkno, dirty, bumpRecoveryGeneration);
  }
}

/** ocfs2_journal_toggle_dirty / the recovery-side flag clear, on any slot's journal dinode. */
export async function setJournalDinodeFlags(vol: Volume, blkno: number, dirty: boolean, bumpRecoveryGeneration: boolean): Promise<void> {
  if (vol.dev.readOnly) throw new Ocfs2Error('cannot change the journal flags of a read-only volume');
  const { buf } = await vol.readInode(blkno);
  const copy = Buffer.from(buf);
  const j = readId1Journal(copy);
  j.ij_flags = dirty ? (j.ij_flags | OCFS2_JOURNAL_DIRTY_FL) >>> 0 : (j.ij_flags & ~OCFS2_JOURNAL_DIRTY_FL) >>> 0;
  if (bumpRecoveryGeneration) j.ij_recovery_generation = (j.ij_recovery_generation + 1) >>> 0;
  writeId1Journal(copy, j);
  if (vol.metaEcc) updateBlockCheck(copy, CHECK_OFFSET.dinode);
  await vol.dev.writeBlocks(blkno, copy);
  vol.dev.invalidate(blkno);
  await vol.dev.flush();
}
