/**
 * Replay a slot's journal to disk (what jbd2_journal_load does at mount and
 * ocfs2_replay_journal does for a dead slot): every replayed block is
 * written home and synced, then the journal superblock is marked empty
 * (s_start = 0, s_sequence = end + 1), then ij_recovery_generation is bumped.
 * Call it for journals whose dinode is dirty.
 * The dinode's dirty flag is left set: the caller clears it once the rest of
 * the slot's recovery (local alloc, truncate log) is done, so a crash in
 * between repeats that recovery instead of skipping it.
 */
import { applyRecovery, recoverJournal } from '../jbd2';
import { JOURNAL_SYSTEM_INODE, systemFileName } from '../sysfiles';
import type { Volume } from '../volume';
import { JournalFile, setJournalDinodeFlags } from './file';
import { fixedHomeCheck } from './homecheck';

export interface ReplayOutcome {
  slot: number;
  /** The log held something to scan (s_start != 0). */
  needed: boolean;
  transactions: number;
  blocks: number;
}

export async function replayJournalToDisk(vol: Volume, slot: number, journalBlkno?: number): Promise<ReplayOutcome> {
  const blkno = journalBlkno ?? vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, slot));
  const jf = await JournalFile.open(vol, slot);
  const res = await recoverJournal(jf.reader, { fsBlockCount: vol.dev.blockCount, checkHome: await fixedHomeCheck(vol) });
  await applyRecovery(jf.reader, res, {
    writeFsBlock: async (b, data) => { await vol.dev.writeBlocks(b, data); },
    writeLogBlock: async (n, data) => {
      // The replayed blocks are durable before the log is declared empty.
      await vol.dev.flush();
      await vol.dev.writeBlocks(jf.phys(n), data);
    },
  });
  await vol.dev.flush();
  for (const b of res.blocks.keys()) vol.dev.invalidate(b);
  // The journal was dirty (callers only replay dirty journals): the kernel bumps the
  // generation whenever it recovers one (ocfs2_journal_toggle_dirty / ocfs2_replay_journal),
  // even when the log itself turns out empty.
  await setJournalDinodeFlags(vol, blkno, true, true);
  return { slot, needed: res.needed, transactions: res.transactions, blocks: res.blocks.size };
}
