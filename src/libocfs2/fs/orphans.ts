/**
 * Orphan recovery at mount (ocfs2_recover_orphans): inodes that were
 * unlinked while open and never closed (the daemon was killed, the machine
 * stopped) sit in `orphan_dir:NNNN` of the slot that unlinked them, named by
 * their block number in 16 hex digits, with OCFS2_ORPHANED_FL and no links.
 * The kernel scans its own slot's orphan directory at every mount and those
 * of the slots it recovered; each such inode is deleted (data, xattrs, dx
 * index, the dinode's bit) and its entry removed.
 */
import { ORPHAN_DIR_SYSTEM_INODE, systemFileName } from '../sysfiles';
import { iterateDirectory } from '../directory';
import type { Ocfs2Fs } from './fs';

export interface OrphanRecovery { slot: number; found: number; deleted: number }

/** Delete the orphans of `slots` (duplicates ignored).  Returns what was found and deleted per slot. */
export async function recoverOrphans(fs: Ocfs2Fs, slots: readonly number[]): Promise<OrphanRecovery[]> {
  const vol = fs.vol;
  const out: OrphanRecovery[] = [];
  for (const slot of [...new Set(slots)]) {
    let dir: number;
    try { dir = vol.systemFile(systemFileName(ORPHAN_DIR_SYSTEM_INODE, slot)); } catch { continue; }
    const inodes: number[] = [];
    for await (const e of iterateDirectory(vol, await vol.readInode(dir))) {
      const n = e.name.toString('latin1');
      if (n === '.' || n === '..') continue;
      inodes.push(e.inode);
    }
    let deleted = 0;
    for (const ino of inodes) if (await fs.releaseOrphan(ino, dir)) deleted++;
    out.push({ slot, found: inodes.length, deleted });
  }
  return out;
}
