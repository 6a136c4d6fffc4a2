/**
 * OCFS2 journals: the read side (journal inode -> JournalReader, in-memory
 * replay) and the write side (JBD2 writer, replay to disk, slot recovery).
 *
 * Exports:
 * - `journalReader(vol, journalBlkno)`, `recoverSlotJournal(vol, journalBlkno)` (read side, used by Volume)
 * - `JournalFile` (one slot's journal: geometry, log/superblock writes, dinode flags), `setJournalDinodeFlags`
 * - `JournaledTransactionManager.open(vol, slot, opts)` implements TransactionManager
 *   (`run`, `flush`, plus `checkpoint()`, `close()`, `abandon()`, `stats`)
 * - `replayJournalToDisk(vol, slot)` (Volume.open read-write uses it)
 * - `recoverSlotAllocState(vol, tm, slot)` (local alloc + truncate log of a recovered slot back to the global bitmap)
 */
export { journalReader, recoverSlotJournal } from './reader';
export { JournalFile, setJournalDinodeFlags } from './file';
export { JournaledTransactionManager, DEFAULT_COMMIT_INTERVAL_MS, type JournalManagerOptions, type JournalStep, type JournalStats } from './manager';
export { replayJournalToDisk, type ReplayOutcome } from './replay';
export { recoverSlotAllocState, freeGlobalClusters } from './slotrecovery';
