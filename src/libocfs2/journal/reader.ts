/**
 * OCFS2 glue for JBD2 recovery: map a slot's journal inode to a JournalReader
 * and compute the replayed block contents.
 */
import { inodeExtentList } from '../structs/dinode';
import { allLeafExtents } from '../extentmap';
import { journalReaderFromMapping, mapFromExtents, recoverJournal, type RecoveryResult, type JournalReader } from '../jbd2';
import type { Volume } from '../volume';
import { fixedHomeCheck } from './homecheck';

/** A JournalReader over the journal file whose inode is at `journalBlkno`. */
export async function journalReader(vol: Volume, journalBlkno: number): Promise<JournalReader> {
  const ino = await vol.readInode(journalBlkno);
  const extents = await allLeafExtents(vol, inodeExtentList(ino.buf, journalBlkno), journalBlkno);
  return journalReaderFromMapping({
    blockSize: vol.blockSize,
    maxLen: Math.floor(ino.inode.size / vol.blockSize),
    mapLogical: mapFromExtents(extents, vol.clusterSize, vol.blockSize),
    readFsBlock: (b) => vol.dev.readBlock(b),
  });
}

/** Scan and replay (in memory) the journal of one slot. */
export async function recoverSlotJournal(vol: Volume, journalBlkno: number): Promise<RecoveryResult> {
  const r = await journalReader(vol, journalBlkno);
  return recoverJournal(r, { fsBlockCount: vol.dev.blockCount, checkHome: await fixedHomeCheck(vol) });
}
