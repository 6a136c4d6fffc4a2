/**
 * JBD2 for OCFS2: structures, recovery, and the glue from an OCFS2 journal
 * inode (`journal:NNNN`) to a JournalReader.
 *
 * The glue takes the inode's mapping as plain data or a function, so it does
 * not depend on the dinode/extent code: journal block n is logical block n of
 * the journal file, and tag block numbers are physical filesystem blocks.
 */
import { Ocfs2CorruptError } from '../errors';
import { readJournalSuperblockBytes, superblockAfterReplay, type JournalReader, type RecoveryResult } from './recovery';

export * from './structs';
export * from './recovery';

/** OCFS2 journal dinode: id1.journal1.ij_flags is the le32 at byte 0xB8 of the inode block (ocfs2_fs.h). */
export const OCFS2_JOURNAL_IJ_FLAGS_OFFSET = 0xb8;
/** id1.journal1.ij_recovery_generation, le32 at 0xBC. */
export const OCFS2_JOURNAL_IJ_RECOVERY_GENERATION_OFFSET = 0xbc;
/** ij_flags bit: the journal may need recovery. */
export const OCFS2_JOURNAL_DIRTY_FL = 0x1;

export interface JournalFileMapping {
  blockSize: number;
  /** Blocks in the journal file: i_size / blockSize. */
  maxLen: number;
  /** Physical filesystem block of logical block n of the journal file (throw or return < 0 for a hole). */
  mapLogical(n: number): number;
  /** Read one filesystem block. */
  readFsBlock(blkno: number): Promise<Buffer>;
}

/** A JournalReader over an OCFS2 journal file, given its block mapping. */
export function journalReaderFromMapping(m: JournalFileMapping): JournalReader {
  const phys = (n: number): number => {
    if (!Number.isInteger(n) || n < 0 || n >= m.maxLen) {
      throw new Ocfs2CorruptError(n, 'jbd2 journal block out of range', `journal block ${n}, journal has ${m.maxLen}`);
    }
    const p = m.mapLogical(n);
    if (!Number.isInteger(p) || p < 0) {
      throw new Ocfs2CorruptError(n, 'jbd2 journal block unmapped', `journal block ${n} has no extent`);
    }
    return p;
  };
  return {
    blockSize: m.blockSize,
    maxLen: m.maxLen,
    readLogBlock: async (n) => m.readFsBlock(phys(n)),
    physicalBlock: (n) => phys(n),
  };
}

/** One extent record of the journal inode, as ocfs2_extent_rec gives it (cluster units). */
export interface JournalExtent {
  /** e_cpos: first logical cluster. */
  cpos: number;
  /** Clusters covered (e_leaf_clusters). */
  clusters: number;
  /** e_blkno: first physical block. */
  blkno: number;
}

/** mapLogical for a flat extent list (journals are allocated, never sparse or unwritten). */
export function mapFromExtents(extents: readonly JournalExtent[], clusterSize: number, blockSize: number): (n: number) => number {
  const bpc = clusterSize / blockSize;
  const sorted = [...extents].sort((a, b) => a.cpos - b.cpos);
  return (n: number): number => {
    const cpos = Math.floor(n / bpc);
    for (const e of sorted) {
      if (cpos >= e.cpos && cpos < e.cpos + e.clusters) return e.blkno + (n - e.cpos * bpc);
    }
    return -1;
  };
}

export interface RecoveryWriter {
  writeFsBlock(blkno: number, data: Buffer): Promise<void>;
  /** Write journal block n (used for the superblock, journal blocks 0..). */
  writeLogBlock(n: number, data: Buffer): Promise<void>;
}

/**
 * Write a recovery result: every replayed block, then (after the caller's
 * writes are durable, which `writeFsBlock` must ensure) the emptied journal
 * superblock.  Clearing the dinode's OCFS2_JOURNAL_DIRTY_FL (and its ECC) is
 * the caller's job.  No-op for a journal that did not need recovery.
 */
export async function applyRecovery(r: JournalReader, res: RecoveryResult, w: RecoveryWriter): Promise<void> {
  if (!res.needed) return;
  const order = [...res.blocks.keys()].sort((a, b) => a - b);
  for (const b of order) await w.writeFsBlock(b, res.blocks.get(b)!);
  const raw = await readJournalSuperblockBytes(r);
  const upd = superblockAfterReplay(raw, res.endSeq);
  for (let i = 0; i * r.blockSize < upd.length; i++) {
    await w.writeLogBlock(i, upd.subarray(i * r.blockSize, (i + 1) * r.blockSize));
  }
}
