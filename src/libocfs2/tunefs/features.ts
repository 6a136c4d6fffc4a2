/**
 * `--fs-features` as tunefs.ocfs2's feature_*.c, for the changes that need
 * no rewrite of existing files: each listed feature is turned on or off
 * with what tunefs.ocfs2 writes alongside the bit (xattr: inline size and
 * uuid hash; extended-slotmap: the slot map reformatted; backup-super: the
 * backup clusters claimed and written, or released).  Changes that would
 * have to convert existing files (metaecc, indexed-dirs on, sparse off, ...)
 * are refused with a message saying so, before anything is written.
 */
import {
  FEATURE_NAMES, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC,
  OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
  OCFS2_MAX_SLOTS, OCFS2_MIN_XATTR_INLINE_SIZE,
} from '../constants';
import { uuidHash } from '../dirhash';
import { backupSuperblockBlknos } from '../structs/superblock';
import { GROUP_BITMAP_OFFSET, GroupDescHeader, groupIsDiscontig, testBit } from '../structs/group';
import { inodeChainList } from '../structs/dinode';
import { CHECK_OFFSET } from '../blockcheck';
import { EXTENT_ALLOC_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, systemFileName } from '../sysfiles';
import { formatSlotMap, type FeatureChange } from './ops';
import { parseFeatureSpec } from '../mkfs/options';
import { TunefsError, type TuneSession } from './session';


interface Bits { compat: number; incompat: number; ro: number }

/** The global bitmap group descriptor holding cluster `c`, and the bit in it. */
function globalBit(s: TuneSession, cpg: number, c: number): { group: number; bit: number } {
  const k = Math.floor(c / cpg);
  return { group: k === 0 ? s.vol.sb.raw.s_first_cluster_group : k * cpg * s.vol.clusterBlocks, bit: c % cpg };
}

/** Any discontiguous group in the slots' inode and extent allocators (feature_discontig_bg's find_discontig_bg). */
async function hasDiscontigGroups(s: TuneSession): Promise<boolean> {
  const vol = s.vol;
  for (let slot = 0; slot < vol.maxSlots; slot++) {
    for (const t of [INODE_ALLOC_SYSTEM_INODE, EXTENT_ALLOC_SYSTEM_INODE]) {
      const blkno = vol.systemFile(systemFileName(t, slot));
      const cl = inodeChainList((await vol.readInode(blkno)).buf, blkno);
      for (const r of cl.recs) {
        for (let g = r.c_blkno; g !== 0;) {
          const buf = await vol.readMetaBlock(g, CHECK_OFFSET.groupDesc);
          if (groupIsDiscontig(buf)) return true;
          g = GroupDescHeader.decode(buf, 0).bg_next_group;
        }
      }
    }
  }
  return false;
}

/**
 * Apply `spec` ("sparse,nounwritten,..."), with libocfs2's dependencies
 * (unwritten brings sparse, nosparse takes unwritten).  Returns the changes
 * made; a feature already in the wanted state is skipped, as tunefs.ocfs2 does.
 */
export async function setFeatures(s: TuneSession, spec: string): Promise<FeatureChange[]> {
  const { on, off } = parseFeatureSpec(spec);
  const { sb } = await s.readSuper();
  const cur: Bits = { compat: sb.s_feature_compat, incompat: sb.s_feature_incompat, ro: sb.s_feature_ro_compat };
  const want: Bits = {
    compat: ((cur.compat | on.compat) & ~off.compat) >>> 0,
    incompat: ((cur.incompat | on.incompat) & ~off.incompat) >>> 0,
    ro: ((cur.ro | on.roCompat) & ~off.roCompat) >>> 0,
  };
  const todo: FeatureChange[] = [];
  for (const f of FEATURE_NAMES) {
    const kind: keyof Bits = f.kind === 'compat' ? 'compat' : f.kind === 'incompat' ? 'incompat' : 'ro';
    const was = (cur[kind] & f.bit) !== 0;
    const will = (want[kind] & f.bit) !== 0;
    if (was !== will) todo.push({ name: f.name, on: will });
  }
  // Checks first (tunefs.ocfs2's feature order, "cannot enable X without Y").
  const has = (b: Bits, kind: keyof Bits, bit: number): boolean => (b[kind] & bit) !== 0;
  for (const c of todo) {
    const n = c.name;
    if (c.on) {
      if (n === 'unwritten' && !has(want, 'incompat', OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC)) {
        throw new TunefsError('sparse files are not enabled: unwritten extents cannot be enabled');
      }
      if (['metaecc', 'indexed-dirs', 'usrquota', 'grpquota', 'local'].includes(n)) {
        throw new TunefsError(`turning ${n} on is not supported by this tunefs yet (it rewrites existing metadata)`);
      }
    } else {
      if (n === 'sparse' && has(want, 'ro', OCFS2_FEATURE_RO_COMPAT_UNWRITTEN)) {
        throw new TunefsError('unwritten extents are enabled: sparse files cannot be disabled');
      }
      if (n === 'extended-slotmap') {
        if (sb.s_max_slots > OCFS2_MAX_SLOTS) throw new TunefsError(`${sb.s_max_slots} slots need the extended slot map`);
        if (has(want, 'incompat', OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) {
          throw new TunefsError('the cluster stack information needs the extended slot map');
        }
      }
      if (n === 'discontig-bg' && (await hasDiscontigGroups(s))) {
        throw new TunefsError('discontiguous block groups are in use: disabling discontig-bg is not supported by this tunefs yet');
      }
      if (!['append-dio', 'extended-slotmap', 'backup-super', 'discontig-bg'].includes(n)) {
        throw new TunefsError(`turning ${n} off is not supported by this tunefs yet (it converts existing files)`);
      }
    }
  }
  if (todo.length === 0) return [];

  const vol = s.vol;
  const bpc = vol.clusterBlocks;
  const backups = backupSuperblockBlknos(vol.blockSize, vol.sb.clusters * bpc);
  const backupChange = todo.find((c) => c.name === 'backup-super');
  if (backupChange) {
    if (backups.length === 0 && backupChange.on) throw new TunefsError('the volume is too small to hold backup superblocks');
    const gstate = await s.rv.alloc.global.state();
    const cpg = gstate.cl.cpg;
    if (backupChange.on) {
      // check_backup_offsets: every location must be free.
      const used: number[] = [];
      for (const b of backups) {
        const { group, bit } = globalBit(s, cpg, Math.floor(b / bpc));
        const { buf } = await s.rv.alloc.global.readGroup(group);
        if (testBit(buf.subarray(GROUP_BITMAP_OFFSET), bit)) used.push(b);
      }
      if (used.length) throw new TunefsError(`backup superblock location(s) ${used.join(', ')} already in use`);
    }
    await s.rv.tm.run(async (tx) => {
      for (const b of backups) {
        const c = Math.floor(b / bpc);
        const { group, bit } = globalBit(s, cpg, c);
        if (backupChange.on) await tx.writeData(c * bpc, Buffer.alloc(vol.clusterSize));
        await s.rv.alloc.global.applyBits(tx, group, bit, 1, backupChange.on);
      }
    });
    await s.rv.tm.flush();
  }
  const slotMapChange = todo.find((c) => c.name === 'extended-slotmap');
  if (slotMapChange) await formatSlotMap(s, sb.s_max_slots, slotMapChange.on);

  await s.writeSuper((x) => {
    x.s_feature_compat = want.compat;
    x.s_feature_incompat = want.incompat;
    x.s_feature_ro_compat = want.ro;
    if (todo.some((c) => c.name === 'xattr' && c.on)) {
      if (!(cur.incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS)) x.s_uuid_hash = uuidHash(x.s_uuid);
      x.s_xattr_inline_size = OCFS2_MIN_XATTR_INLINE_SIZE;
    }
  });
  return todo;
}
