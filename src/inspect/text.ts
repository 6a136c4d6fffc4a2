/**
 * debugfs.ocfs2's text layouts (debugfs.ocfs2/dump.c, utils.c), line for
 * line: dump_super_block + dump_inode for `stats`, dump_inode with the
 * extent or chain list for `stat`, dump_dir_entry for `ls -l`.  Dates are in
 * local time as ctime(3) prints them; inode times carry nanoseconds
 * (ctime_nano).  The --json output of the commands is separate and unchanged.
 */
import * as fs from 'node:fs';
import {
  FEATURE_NAMES, OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT, OCFS2_DEALLOC_FL,
  OCFS2_HAS_XATTR_FL, OCFS2_INDEXED_DIR_FL, OCFS2_INLINE_DATA_FL, OCFS2_INVALID_SLOT_U16, OCFS2_JOURNAL_DIRTY_FL,
  OCFS2_JOURNAL_FL, OCFS2_LOCAL_ALLOC_FL, S_IFMT, S_IFLNK, dynFeatureNames, featureNames, inodeFlagNames, tunefsFlagNames,
} from '../libocfs2/constants';
import {
  DinodeHeader, inodeChainList, inodeExtentList, inodeInlineData, inodeLocalAlloc, inodeTruncateLog, readId1Bitmap, readId1Journal, type DinodeHeaderT,
} from '../libocfs2/structs/dinode';
import type { Volume } from '../libocfs2/volume';
import { decodeGroupDesc, longestZeroRun, type GroupDesc } from '../libocfs2/structs/group';
import { CHECK_OFFSET } from '../libocfs2/blockcheck';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => String(n).padStart(2, '0');

/** ctime(3) without the newline: "Sat Dec  5 19:15:53 2026" (local time). */
export function ctimeText(sec: number, nsec?: number): string {
  const d = new Date(sec * 1000);
  const time = `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2)} ${time}${nsec !== undefined ? `.${nsec}` : ''} ${d.getFullYear()}`;
}

/** inode_time_to_str: " 5-Dec-2026 19:15". */
export function lsTimeText(sec: number): string {
  const d = new Date(sec * 1000);
  return `${String(d.getDate()).padStart(2)}-${MONTHS[d.getMonth()]}-${String(d.getFullYear()).padStart(4)} ${p2(d.getHours())}:${p2(d.getMinutes())}`;
}

/** inode_perms_to_str (fifo is 'f' in debugfs). */
export function permsText(mode: number): string {
  const types: Record<number, string> = { 0o100000: '-', 0o040000: 'd', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'f', 0o140000: 's' };
  const rwx = (v: number, special: number, ch: string): string =>
    `${v & 4 ? 'r' : '-'}${v & 2 ? 'w' : '-'}${special ? (v & 1 ? ch : ch.toUpperCase()) : (v & 1 ? 'x' : '-')}`;
  return (types[mode & S_IFMT] ?? '-') + rwx((mode >> 6) & 7, mode & 0o4000, 's') + rwx((mode >> 3) & 7, mode & 0o2000, 's')
    + rwx(mode & 7, mode & 0o1000, 't');
}

const idNames = new Map<string, Map<number, string>>();
/** getpwuid / getgrgid from /etc/passwd and /etc/group. */
function idName(file: '/etc/passwd' | '/etc/group', id: number): string {
  let m = idNames.get(file);
  if (!m) {
    m = new Map();
    try {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length > 2 && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
      }
    } catch { /* no database */ }
    idNames.set(file, m);
  }
  return m.get(id) ?? 'unknown';
}

function typeName(mode: number): string {
  const t: Record<number, string> = {
    0o100000: 'Regular', 0o040000: 'Directory', 0o020000: 'Char Device', 0o060000: 'Block Device',
    0o010000: 'FIFO', 0o120000: 'Symbolic Link', 0o140000: 'Socket',
  };
  return t[mode & S_IFMT] ?? 'Unknown';
}

const withSpace = (names: string[]): string => names.map((n) => `${n} `).join('');

/** dump_inode. */
export function inodeText(buf: Buffer): string[] {
  const h: DinodeHeaderT = DinodeHeader.decode(buf, 0);
  const L: string[] = [];
  L.push(`\tInode: ${h.i_blkno}   Mode: 0${(h.i_mode & 0o777).toString(8)}   Generation: ${h.i_generation} (0x${h.i_generation.toString(16)})`);
  L.push(`\tFS Generation: ${h.i_fs_generation} (0x${h.i_fs_generation.toString(16)})`);
  L.push(`\tCRC32: ${h.i_check.readUInt32LE(0).toString(16).padStart(8, '0')}   ECC: ${h.i_check.readUInt16LE(4).toString(16).padStart(4, '0')}`);
  L.push(`\tType: ${typeName(h.i_mode)}   Attr: 0x${h.i_attr.toString(16)}   Flags: ${withSpace(inodeFlagNames(h.i_flags).filter((n) => !['Quota', 'DioOrphaned'].includes(n)))}`);
  L.push(`\tDynamic Features: (0x${h.i_dyn_features.toString(16)}) ${withSpace(dynFeatureNames(h.i_dyn_features))}`);
  if (h.i_dyn_features & OCFS2_HAS_XATTR_FL) {
    L.push(`\tExtended Attributes Block: ${h.i_xattr_loc}  Extended Attributes Inline Size: ${h.i_xattr_inline_size}`);
  }
  L.push(`\tUser: ${h.i_uid} (${idName('/etc/passwd', h.i_uid)})   Group: ${h.i_gid} (${idName('/etc/group', h.i_gid)})   Size: ${h.i_size}`);
  L.push(`\tLinks: ${h.i_links_count}   Clusters: ${h.i_clusters}`);
  const t = (name: string, sec: number, nsec: number): string =>
    `\t${name}: 0x${BigInt.asUintN(64, BigInt(sec)).toString(16)} 0x${nsec.toString(16)} -- ${ctimeText(sec, nsec)}`;
  L.push(t('ctime', h.i_ctime, h.i_ctime_nsec), t('atime', h.i_atime, h.i_atime_nsec), t('mtime', h.i_mtime, h.i_mtime_nsec));
  L.push(`\tdtime: 0x${BigInt.asUintN(64, BigInt(h.i_dtime)).toString(16)} -- ${ctimeText(h.i_dtime)}`);
  L.push(`\tRefcount Block: ${h.i_refcount_loc}`);
  L.push(`\tLast Extblk: ${h.i_last_eb_blk}   Orphan Slot: ${h.i_orphaned_slot << 16 >> 16}`);
  const slot = h.i_suballoc_slot === OCFS2_INVALID_SLOT_U16 ? 'Global' : String(h.i_suballoc_slot);
  L.push(`\tSub Alloc Slot: ${slot}   Sub Alloc Bit: ${h.i_suballoc_bit}${h.i_suballoc_loc ? `   Sub Alloc Group ${h.i_suballoc_loc}` : ''}`);
  if (h.i_flags & OCFS2_BITMAP_FL) {
    const b = readId1Bitmap(buf);
    L.push(`\tBitmap Total: ${b.i_total}   Used: ${b.i_used}   Free: ${b.i_total - b.i_used}`);
  }
  if (h.i_flags & OCFS2_JOURNAL_FL) {
    const j = readId1Journal(buf);
    L.push(`\tJournal Flags: ${j.ij_flags & OCFS2_JOURNAL_DIRTY_FL ? 'Dirty ' : ''}`);
    L.push(`\tRecovery Generation: ${j.ij_recovery_generation}`);
  }
  if (h.i_dyn_features & OCFS2_INLINE_DATA_FL) L.push(`\tInline Data Max: ${inodeInlineData(buf, h.i_blkno).count}`);
  else if (h.i_dyn_features & OCFS2_INDEXED_DIR_FL) L.push(`\tIndexed Tree Root: ${h.i_dx_root}`);
  return L;
}

/** dump_group_descriptor: the chain header before the first group, then one row per group. */
function groupLines(gd: GroupDesc, index: number): string[] {
  const h = gd.header;
  const L: string[] = [];
  if (!index) {
    L.push(`\tGroup Chain: ${h.bg_chain}   Parent Inode: ${h.bg_parent_dinode}  Generation: ${h.bg_generation}`);
    L.push(`\tCRC32: ${h.bg_check.readUInt32LE(0).toString(16).padStart(8, '0')}   ECC: ${h.bg_check.readUInt16LE(4).toString(16).padStart(4, '0')}`);
    L.push(`\t##   ${'Block#'.padEnd(15)}   ${'Total'.padEnd(6)}   ${'Used'.padEnd(6)}   ${'Free'.padEnd(6)}   ${'Contig'.padEnd(6)}   ${'Size'.padEnd(6)}`);
  }
  const contig = longestZeroRun(gd.bitmap, h.bg_bits);
  L.push(`\t${String(index).padEnd(2)}   ${String(h.bg_blkno).padEnd(15)}   ${String(h.bg_bits).padEnd(6)}   ${String(h.bg_bits - h.bg_free_bits_count).padEnd(6)}   `
    + `${String(h.bg_free_bits_count).padEnd(6)}   ${String(contig).padEnd(6)}   ${String(h.bg_size).padEnd(6)}`);
  return L;
}

/** `stat`: dump_inode, then the chain list and its groups, or the inode's extent list (do_stat with traverse). */
export async function statText(vol: Volume, buf: Buffer): Promise<string> {
  const h = DinodeHeader.decode(buf, 0);
  const L = inodeText(buf);
  if (h.i_flags & OCFS2_LOCAL_ALLOC_FL) {
    const la = inodeLocalAlloc(buf, h.i_blkno).header;
    L.push(`\tLocal Bitmap Offset: ${la.la_bm_off}   Size: ${la.la_size}`);
  } else if (h.i_flags & OCFS2_DEALLOC_FL) {
    const tl = inodeTruncateLog(buf, h.i_blkno);
    L.push(`\tTotal Records: ${tl.count}   Used: ${tl.used}`);
    L.push(`\t##   ${'Start Cluster'.padEnd(10)}   ${'Num Clusters'.padEnd(10)}`);
    tl.recs.slice(0, tl.used).forEach((r, i) => L.push(`\t${String(i).padEnd(2)}   ${String(r.t_start).padEnd(10)}   ${String(r.t_clusters).padEnd(10)}`));
  } else if (h.i_flags & OCFS2_CHAIN_FL) {
    const cl = inodeChainList(buf, h.i_blkno);
    L.push(`\tClusters per Group: ${cl.cpg}   Bits per Cluster: ${cl.bpc}`);
    L.push(`\tCount: ${cl.count}   Next Free Rec: ${cl.nextFreeRec}`);
    if (cl.nextFreeRec) {
      L.push(`\t##   ${'Total'.padEnd(10)}   ${'Used'.padEnd(10)}   ${'Free'.padEnd(10)}   Block#`);
      cl.recs.slice(0, cl.nextFreeRec).forEach((r, i) => {
        L.push(`\t${String(i).padEnd(2)}   ${String(r.c_total).padEnd(10)}   ${String(r.c_total - r.c_free).padEnd(10)}   ${String(r.c_free).padEnd(10)}   ${r.c_blkno}`);
      });
    }
    for (const rec of cl.recs.slice(0, cl.nextFreeRec)) {
      L.push('');
      const seen = new Set<number>();
      for (let g = rec.c_blkno, index = 0; g !== 0 && !seen.has(g); index++) {
        seen.add(g);
        const gd = decodeGroupDesc(await vol.readMetaBlock(g, CHECK_OFFSET.groupDesc), g);
        L.push(...groupLines(gd, index));
        g = gd.header.bg_next_group;
      }
    }
  } else if ((h.i_mode & S_IFMT) === S_IFLNK && h.i_clusters === 0) {
    const z = buf.indexOf(0, 0xc0);
    L.push(`\tFast Symlink Destination: ${buf.subarray(0xc0, z < 0 ? buf.length : z).toString('utf8')}`);
  } else if (!(h.i_dyn_features & OCFS2_INLINE_DATA_FL)) {
    const el = inodeExtentList(buf, h.i_blkno);
    L.push(`\tTree Depth: ${el.treeDepth}   Count: ${el.count}   Next Free Rec: ${el.nextFreeRec}`);
    if (el.nextFreeRec) {
      if (el.treeDepth) L.push(`\t## ${'Offset'.padEnd(11)}   ${'Clusters'.padEnd(12)}   Block#`);
      else L.push(`\t## ${'Offset'.padEnd(11)}   ${'Clusters'.padEnd(12)}   ${'Block#'.padEnd(13)}   Flags`);
      el.recs.slice(0, el.nextFreeRec).forEach((r, i) => {
        if (el.treeDepth) L.push(`\t${String(i).padEnd(2)} ${String(r.cpos).padEnd(11)}   ${String(r.clusters).padEnd(12)}   ${r.blkno}`);
        else {
          const names = [r.flags & 1 ? 'Unwritten' : '', r.flags & 2 ? 'Refcounted' : ''].filter(Boolean).join(' ');
          L.push(`\t${String(i).padEnd(2)} ${String(r.cpos).padEnd(11)}   ${String(r.clusters).padEnd(12)}   ${String(r.blkno).padEnd(13)}   0x${r.flags.toString(16)} ${names}`);
        }
      });
    }
  }
  return `${L.join('\n')}\n`;
}

/** `stats`: dump_super_block + dump_inode of the superblock. */
export function statsText(vol: Volume, sbBlock: Buffer): string {
  const r = vol.sb.raw;
  const L: string[] = [];
  const flagLine = (names: string[]): string => names.join(' ');
  L.push(`\tRevision: ${r.s_major_rev_level}.${r.s_minor_rev_level}`);
  L.push(`\tMount Count: ${r.s_mnt_count}   Max Mount Count: ${r.s_max_mnt_count}`);
  L.push(`\tState: ${r.s_state}   Errors: ${r.s_errors}`);
  L.push(`\tCheck Interval: ${r.s_checkinterval}   Last Check: ${ctimeText(Number(r.s_lastcheck))}`);
  L.push(`\tCreator OS: ${r.s_creator_os}`);
  L.push(`\tFeature Compat: ${r.s_feature_compat} ${flagLine(featureNames(r.s_feature_compat, 0, 0))}`);
  L.push(`\tFeature Incompat: ${r.s_feature_incompat} ${flagLine(featureNames(0, r.s_feature_incompat, 0))}`);
  L.push(`\tTunefs Incomplete: ${r.s_tunefs_flag} ${flagLine(tunefsFlagNames(r.s_tunefs_flag))}`);
  L.push(`\tFeature RO compat: ${r.s_feature_ro_compat} ${flagLine(featureNames(0, 0, r.s_feature_ro_compat))}`);
  L.push(`\tRoot Blknum: ${r.s_root_blkno}   System Dir Blknum: ${r.s_system_dir_blkno}`);
  L.push(`\tFirst Cluster Group Blknum: ${r.s_first_cluster_group}`);
  L.push(`\tBlock Size Bits: ${r.s_blocksize_bits}   Cluster Size Bits: ${r.s_clustersize_bits}`);
  L.push(`\tMax Node Slots: ${r.s_max_slots}`);
  L.push(`\tExtended Attributes Inline Size: ${r.s_xattr_inline_size}`);
  L.push(`\tLabel: ${vol.sb.label}`);
  L.push(`\tUUID: ${vol.sb.uuidHex}`);
  L.push(`\tHash: ${r.s_uuid_hash} (0x${r.s_uuid_hash.toString(16)})`);
  const seeds = [r.s_dx_seed0, r.s_dx_seed1, r.s_dx_seed2];
  L.push(`\tDX Seeds: ${seeds.join(' ')} (${seeds.map((x) => `0x${x.toString(16).padStart(8, '0')}`).join(' ')})`);
  if (vol.sb.clusterInfoValid) {
    L.push(`\tCluster stack: ${vol.sb.clusterStack}`);
    L.push(`\tCluster name: ${vol.sb.clusterName}`);
  } else {
    L.push('\tCluster stack: classic o2cb');
  }
  const cf = r.ci_stackflags;
  L.push(`\tCluster flags: ${cf} ${cf & OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT ? 'Globalheartbeat' : ''}`);
  L.push(...inodeText(sbBlock));
  void FEATURE_NAMES;
  return `${L.join('\n')}\n`;
}

/** One `ls -l` line (dump_dir_entry, long form). */
export function lsLongLine(inode: number, name: string, h: DinodeHeaderT | null): string {
  if (!h) return `\t${String(inode).padEnd(15)} ${'?'.padStart(10)} ${name}`;
  return `\t${String(inode).padEnd(15)} ${permsText(h.i_mode).padStart(10)} ${String(h.i_links_count).padStart(3)} ${String(h.i_uid).padStart(5)} `
    + `${String(h.i_gid).padStart(5)} ${String(h.i_size).padStart(15)} ${lsTimeText(h.i_mtime)} ${name}`;
}

/** One `ls` line (short form): inode, rec_len, name_len, file type, name. */
export function lsShortLine(inode: number, recLen: number, nameLen: number, fileType: number, name: string): string {
  return `\t${String(inode).padEnd(15)} ${String(recLen).padEnd(4)} ${String(nameLen).padEnd(4)} ${String(fileType).padEnd(2)} ${name}`;
}
