/**
 * What a replayed block may put on a fixed-format home (issue 16): a jbd2
 * journal without checksums cannot tell a tag whose block number was damaged
 * from a good one, and replaying, say, a directory block onto block 2 destroys
 * the superblock.  The homes whose format is known before replay are checked:
 * the superblock and its backups, every system inode (from the system
 * directory as it stands), and the global bitmap's group descriptors (at
 * their fixed places, ocfs2_which_cluster_group).  Their replacement must
 * carry the signature and pass the same validators the read path uses
 * (structs/*), metaecc included; otherwise replay stops and the caller
 * refuses the mount naming the journal block.
 */
import { CHECK_OFFSET, verifyBlockCheck } from '../blockcheck';
import { OCFS2_SUPER_BLOCK_BLKNO } from '../constants';
import { Ocfs2CorruptError } from '../errors';
import { inodeChainList, validateDinode } from '../structs/dinode';
import { validateGroupDesc } from '../structs/group';
import { backupSuperblockBlknos, checkSuperblock, decodeSuperblock } from '../structs/superblock';
import { GLOBAL_BITMAP_SYSTEM_INODE, systemFileName } from '../sysfiles';
import type { Volume } from '../volume';

/** Returns the failed check for `data` replayed onto fs block `home`, or null when acceptable. */
export type HomeCheck = (home: number, data: Buffer) => string | null;

export async function fixedHomeCheck(vol: Volume): Promise<HomeCheck> {
  const kinds = new Map<number, 'super' | 'sysinode' | 'globalgroup'>();
  kinds.set(OCFS2_SUPER_BLOCK_BLKNO, 'super');
  for (const b of backupSuperblockBlknos(vol.blockSize, vol.dev.blockCount)) kinds.set(b, 'super');
  for (const name of vol.systemFileNames()) kinds.set(vol.systemFile(name), 'sysinode');
  kinds.set(vol.systemDirBlkno, 'sysinode');
  let globalBlkno = -1;
  try {
    globalBlkno = vol.systemFile(systemFileName(GLOBAL_BITMAP_SYSTEM_INODE));
    const cpg = inodeChainList((await vol.readInode(globalBlkno)).buf, globalBlkno).cpg;
    const groups = Math.ceil(vol.sb.clusters / cpg);
    for (let g = 0; g < groups; g++) kinds.set(g === 0 ? vol.sb.raw.s_first_cluster_group : g * cpg * vol.clusterBlocks, 'globalgroup');
  } catch { /* no readable global bitmap: its groups are not checked here (the mount checks the bitmap later) */ }
  const gen = vol.sb.fsGeneration;
  return (home, data) => {
    const kind = kinds.get(home);
    if (!kind) return null;
    try {
      const copy = Buffer.from(data);
      if (kind === 'super') {
        const sb = decodeSuperblock(copy, home);
        checkSuperblock(sb, vol.blockSize, home);
        if (vol.metaEcc) verifyBlockCheck(copy, CHECK_OFFSET.dinode, home);
      } else if (kind === 'sysinode') {
        validateDinode(copy, home, gen);
        if (vol.metaEcc) verifyBlockCheck(copy, CHECK_OFFSET.dinode, home);
      } else {
        validateGroupDesc(copy, home, { fsGeneration: gen, parentDinode: globalBlkno });
        if (vol.metaEcc) verifyBlockCheck(copy, CHECK_OFFSET.groupDesc, home);
      }
      return null;
    } catch (e) {
      if (e instanceof Ocfs2CorruptError) return `${kind === 'super' ? 'superblock' : kind === 'sysinode' ? 'system inode' : 'global bitmap group'} check failed: ${e.message}`;
      throw e;
    }
  };
}
