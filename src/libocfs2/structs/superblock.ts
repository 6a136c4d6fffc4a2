/**
 * The superblock: ocfs2_super_block in id2 of the dinode at block 2 (in
 * units of the volume's own block size: byte 1024 @512, 2048 @1K, 4096 @2K,
 * 8192 @4K), signature "OCFSV2".  Offsets below are relative to id2 (0xC0);
 * the structure fits in 0x140 bytes so the whole superblock inode fits in
 * the smallest (512-byte) block.  Backups (compat BACKUP_SB) are full copies
 * at byte 1 GiB << 2i, each with i_blkno = its own block number.
 */
import { Ocfs2CorruptError, Ocfs2FormatError } from '../errors';
import { cString, defineStruct } from '../struct';
import {
  OCFS2_BACKUP_SB_START, OCFS2_BLOCK_SIZES, OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_INCOMPAT_META_ECC,
  OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_MAJOR_REV_LEVEL,
  OCFS2_MAX_BACKUP_SUPERBLOCKS, OCFS2_MAX_SLOTS, OCFS2_MINOR_REV_LEVEL, OCFS2_SUPER_BLOCK_BLKNO,
  OCFS2_SUPER_BLOCK_SIGNATURE, hasSignature,
} from '../constants';
import { DINODE_ID2_OFFSET, DinodeHeader, checkDinodeHeader, type DinodeHeaderT } from './dinode';
import { decodeOrCorrupt } from './extent';
import { verifyBlockCheck } from '../blockcheck';

export const SuperBlock = defineStruct('ocfs2_super_block', 0x140, 'le', [
  { name: 's_major_rev_level', offset: 0x00, type: 'u16' },
  { name: 's_minor_rev_level', offset: 0x02, type: 'u16' },
  { name: 's_mnt_count', offset: 0x04, type: 'u16' },
  { name: 's_max_mnt_count', offset: 0x06, type: 'u16' },
  { name: 's_state', offset: 0x08, type: 'u16' },
  { name: 's_errors', offset: 0x0a, type: 'u16' },
  { name: 's_checkinterval', offset: 0x0c, type: 'u32' },
  { name: 's_lastcheck', offset: 0x10, type: 'u64' },
  { name: 's_creator_os', offset: 0x18, type: 'u32' },
  { name: 's_feature_compat', offset: 0x1c, type: 'u32' },
  { name: 's_feature_incompat', offset: 0x20, type: 'u32' },
  { name: 's_feature_ro_compat', offset: 0x24, type: 'u32' },
  { name: 's_root_blkno', offset: 0x28, type: 'u64' },
  { name: 's_system_dir_blkno', offset: 0x30, type: 'u64' },
  { name: 's_blocksize_bits', offset: 0x38, type: 'u32' },
  { name: 's_clustersize_bits', offset: 0x3c, type: 'u32' },
  { name: 's_max_slots', offset: 0x40, type: 'u16' },
  { name: 's_tunefs_flag', offset: 0x42, type: 'u16' },
  { name: 's_uuid_hash', offset: 0x44, type: 'u32' },
  { name: 's_first_cluster_group', offset: 0x48, type: 'u64' },
  { name: 's_label', offset: 0x50, type: 'bytes', size: 64 },
  { name: 's_uuid', offset: 0x90, type: 'bytes', size: 16 },
  // s_cluster_info (ocfs2_cluster_info, 24 bytes), valid with
  // USERSPACE_STACK or CLUSTERINFO.
  { name: 'ci_stack', offset: 0xa0, type: 'bytes', size: 4 },
  { name: 'ci_stackflags', offset: 0xa4, type: 'u8' },
  { name: 'ci_reserved', offset: 0xa5, type: 'bytes', size: 3 },
  { name: 'ci_cluster', offset: 0xa8, type: 'bytes', size: 16 },
  { name: 's_xattr_inline_size', offset: 0xb8, type: 'u16' },
  { name: 's_reserved0', offset: 0xba, type: 'u16' },
  { name: 's_dx_seed0', offset: 0xbc, type: 'u32' },
  { name: 's_dx_seed1', offset: 0xc0, type: 'u32' },
  { name: 's_dx_seed2', offset: 0xc4, type: 'u32' },
  // s_reserved2[15] (0xC8..0x140, "/*C0*/" in the header comment is off by 8).
  { name: 's_reserved2', offset: 0xc8, type: 'bytes', size: 120 },
] as const);

export type SuperBlockT = ReturnType<typeof SuperBlock.decode>;

/** Absolute offset of the superblock within its block. */
export const SUPERBLOCK_OFFSET = DINODE_ID2_OFFSET;

export interface Superblock {
  /** The superblock's own dinode header (i_blkno, i_clusters = volume clusters, i_fs_generation...). */
  inode: DinodeHeaderT;
  raw: SuperBlockT;
  blocksize: number;
  clustersize: number;
  /** i_clusters of the superblock inode: the volume's cluster count. */
  clusters: number;
  fsGeneration: number;
  label: string;
  /** 16 raw bytes. */
  uuid: Buffer;
  /** Upper-case hex without dashes, as debugfs prints it. */
  uuidHex: string;
  /** ocfs2_clusterinfo_valid: s_cluster_info means something only with USERSPACE_STACK or CLUSTERINFO. */
  clusterInfoValid: boolean;
  clusterStack: string;
  clusterName: string;
  clusterFlags: number;
  dxSeed: [number, number, number];
  compat: number;
  incompat: number;
  roCompat: number;
}

export function decodeSuperblock(buf: Buffer, blkno = OCFS2_SUPER_BLOCK_BLKNO): Superblock {
  if (!hasSignature(buf, 0, OCFS2_SUPER_BLOCK_SIGNATURE)) {
    throw new Ocfs2CorruptError(blkno, 'superblock signature mismatch');
  }
  const inode = decodeOrCorrupt(DinodeHeader, buf, 0, blkno);
  const raw = decodeOrCorrupt(SuperBlock, buf, SUPERBLOCK_OFFSET, blkno);
  return {
    inode, raw,
    blocksize: 2 ** raw.s_blocksize_bits,
    clustersize: 2 ** raw.s_clustersize_bits,
    clusters: inode.i_clusters,
    fsGeneration: inode.i_fs_generation,
    label: cString(raw.s_label),
    uuid: raw.s_uuid,
    uuidHex: raw.s_uuid.toString('hex').toUpperCase(),
    clusterInfoValid: (raw.s_feature_incompat
      & (OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) !== 0,
    clusterStack: cString(raw.ci_stack),
    clusterName: cString(raw.ci_cluster),
    clusterFlags: raw.ci_stackflags,
    dxSeed: [raw.s_dx_seed0, raw.s_dx_seed1, raw.s_dx_seed2],
    compat: raw.s_feature_compat,
    incompat: raw.s_feature_incompat,
    roCompat: raw.s_feature_ro_compat,
  };
}

/** Write the superblock fields (id2) into a block. */
export function encodeSuperblockFields(raw: SuperBlockT, buf: Buffer): void {
  SuperBlock.encode(raw, buf, SUPERBLOCK_OFFSET);
}

/**
 * ocfs2_verify_volume's checks on a superblock read from block `blkno` with
 * block size `blocksize` (signature already matched; the ECC is checked by
 * the caller).
 */
export function checkSuperblock(sb: Superblock, blocksize: number, blkno: number): void {
  const r = sb.raw;
  if (sb.blocksize !== blocksize) {
    throw new Ocfs2CorruptError(blkno, 'superblock block size mismatch',
      `s_blocksize_bits ${r.s_blocksize_bits}, read with ${blocksize}`);
  }
  if (r.s_major_rev_level !== OCFS2_MAJOR_REV_LEVEL || r.s_minor_rev_level !== OCFS2_MINOR_REV_LEVEL) {
    throw new Ocfs2CorruptError(blkno, 'superblock revision is not 0.90',
      `${r.s_major_rev_level}.${r.s_minor_rev_level}`);
  }
  checkDinodeHeader(sb.inode, blocksize, blkno);
  if (r.s_clustersize_bits < 12 || r.s_clustersize_bits > 20) {
    throw new Ocfs2CorruptError(blkno, 'superblock cluster size out of range', `s_clustersize_bits ${r.s_clustersize_bits}`);
  }
  if (r.s_root_blkno === 0 || r.s_system_dir_blkno === 0) {
    throw new Ocfs2CorruptError(blkno, 'superblock root or system dir block is zero');
  }
  if (r.s_max_slots === 0 || r.s_max_slots > OCFS2_MAX_SLOTS) {
    throw new Ocfs2CorruptError(blkno, 'superblock s_max_slots out of range', `${r.s_max_slots}`);
  }
}

/* ---- backups ------------------------------------------------------------------ */

/** ocfs2_backup_super_blkno: block of backup `index` (0..5) for a block size. */
export function backupSuperblockBlkno(blocksize: number, index: number): number {
  if (index < 0 || index >= OCFS2_MAX_BACKUP_SUPERBLOCKS) return 0;
  return (OCFS2_BACKUP_SB_START * 4 ** index) / blocksize;
}

/** The backup superblock blocks that lie inside a volume of `totalBlocks` blocks. */
export function backupSuperblockBlknos(blocksize: number, totalBlocks: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < OCFS2_MAX_BACKUP_SUPERBLOCKS; i++) {
    const b = backupSuperblockBlkno(blocksize, i);
    if (b >= totalBlocks) break;
    out.push(b);
  }
  return out;
}

/* ---- probe -------------------------------------------------------------------- */

export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface ProbeOptions {
  /** Read backup superblock `backup` (1..6, as fsck.ocfs2 -r) instead of block 2. */
  backup?: number;
  /** Skip the ECC check that is otherwise applied when the superblock has META_ECC. */
  skipEcc?: boolean;
}

export interface ProbeResult {
  blocksize: number;
  blkno: number;
  /** The raw superblock block (corrected in place if the ECC fixed a bit). */
  block: Buffer;
  sb: Superblock;
}

/**
 * Find the superblock as the kernel's ocfs2_sb_probe does: for each block
 * size 512..4096 read block 2 at that size and accept the first block whose
 * signature is "OCFSV2"; a signature match whose fields do not check out is
 * an error (Ocfs2CorruptError), not a reason to keep probing.  No signature
 * at any size: Ocfs2FormatError("not an OCFS2 volume: ...").
 */
export async function probeSuperblock(readAt: ReadAt, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const tried: string[] = [];
  for (const bs of OCFS2_BLOCK_SIZES) {
    const blkno = opts.backup ? backupSuperblockBlkno(bs, opts.backup - 1) : OCFS2_SUPER_BLOCK_BLKNO;
    if (!blkno) throw new Ocfs2FormatError(`no backup superblock ${opts.backup}`);
    let block: Buffer;
    try {
      block = await readAt(blkno * bs, bs);
    } catch {
      tried.push(`${bs}: unreadable`);
      continue;
    }
    if (block.length < bs) { tried.push(`${bs}: short read`); continue; }
    if (!hasSignature(block, 0, OCFS2_SUPER_BLOCK_SIGNATURE)) { tried.push(`${bs}: no signature`); continue; }
    // Every backup starts at the same byte offset whatever the block size,
    // so a backup read at the wrong size is skipped (as ocfs2-tools does),
    // while the primary at block 2 is a different byte for every size.
    const bits = block.readUInt32LE(SUPERBLOCK_OFFSET + SuperBlock.offsetOf('s_blocksize_bits'));
    if (opts.backup && 2 ** bits !== bs) { tried.push(`${bs}: block size bits ${bits}`); continue; }
    const rawIncompat = block.readUInt32LE(SUPERBLOCK_OFFSET + SuperBlock.offsetOf('s_feature_incompat'));
    if ((rawIncompat & OCFS2_FEATURE_INCOMPAT_META_ECC) && !opts.skipEcc) {
      verifyBlockCheck(block, DinodeHeader.offsetOf('i_check'), blkno);
    }
    const sb = decodeSuperblock(block, blkno);
    checkSuperblock(sb, bs, blkno);
    return { blocksize: bs, blkno, block, sb };
  }
  const where = opts.backup ? `backup superblock ${opts.backup}` : 'superblock';
  throw new Ocfs2FormatError(`not an OCFS2 volume: no ${where} signature "${OCFS2_SUPER_BLOCK_SIGNATURE}" at any block size (${tried.join(', ')})`);
}
