/**
 * JBD2 on-disk structures (all big-endian), as OCFS2 uses them for its
 * per-slot journals (`journal:NNNN`).  Layouts follow include/linux/jbd2.h
 * and ocfs2-tools include/ocfs2/jbd2.h; see the format briefing §6.
 *
 * A journal block is one of: the journal superblock (journal block 0),
 * a descriptor block (header + tags, then the tagged data blocks follow in
 * the log), a commit block, or a revoke block.  Every one starts with the
 * 12-byte journal_header_t.
 */
import { defineStruct, type StructDef } from '../struct';

/** The decoded value type of a struct definition. */
export type ValueOf<S> = S extends StructDef<infer T> ? T : never;
import { crc32c } from '../crc32';

export const JBD2_MAGIC = 0xc03b3998;

/** h_blocktype values. */
export const JBD2_DESCRIPTOR_BLOCK = 1;
export const JBD2_COMMIT_BLOCK = 2;
export const JBD2_SUPERBLOCK_V1 = 3;
export const JBD2_SUPERBLOCK_V2 = 4;
export const JBD2_REVOKE_BLOCK = 5;

/** Feature bits (only meaningful in a V2 superblock). */
export const JBD2_FEATURE_COMPAT_CHECKSUM = 0x1; // old crc32_be "transaction checksum" in commit blocks
export const JBD2_FEATURE_INCOMPAT_REVOKE = 0x1;
export const JBD2_FEATURE_INCOMPAT_64BIT = 0x2;
export const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x4;
export const JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x8;
export const JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x10;
export const JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x20;

/** What this implementation can replay (FAST_COMMIT is ext4-only: its log area is not replayable here). */
export const JBD2_KNOWN_COMPAT = JBD2_FEATURE_COMPAT_CHECKSUM;
export const JBD2_KNOWN_INCOMPAT = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT
  | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT | JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3;
export const JBD2_KNOWN_RO_COMPAT = 0;

/** Descriptor tag flags (t_flags). */
export const JBD2_FLAG_ESCAPE = 1; // data block began with JBD2_MAGIC; zeroed in the log
export const JBD2_FLAG_SAME_UUID = 2; // clear => a 16-byte UUID follows the tag
export const JBD2_FLAG_DELETED = 4;
export const JBD2_FLAG_LAST_TAG = 8;

/** commit_header.h_chksum_type and superblock s_checksum_type. */
export const JBD2_CRC32_CHKSUM = 1;
export const JBD2_MD5_CHKSUM = 2;
export const JBD2_SHA1_CHKSUM = 3;
export const JBD2_CRC32C_CHKSUM = 4;
export const JBD2_CRC32_CHKSUM_SIZE = 4;
/** commit_header.h_chksum has 32 bytes = 8 be32 words. */
export const JBD2_CHECKSUM_BYTES = 8;

/** Size of journal_superblock_t (it may span two 512-byte journal blocks). */
export const JBD2_SUPERBLOCK_SIZE = 1024;

export const journalHeader = defineStruct('journal_header_t', 12, 'be', [
  { name: 'h_magic', offset: 0x00, type: 'u32' },
  { name: 'h_blocktype', offset: 0x04, type: 'u32' },
  { name: 'h_sequence', offset: 0x08, type: 'u32' },
] as const);
export type JournalHeader = ValueOf<typeof journalHeader>;

/** Version-1 superblock: only the static and dynamic fields, no features. */
export const journalSuperblockV1 = defineStruct('journal_superblock_t(v1)', 0x24, 'be', [
  { name: 'h_magic', offset: 0x00, type: 'u32' },
  { name: 'h_blocktype', offset: 0x04, type: 'u32' },
  { name: 'h_sequence', offset: 0x08, type: 'u32' },
  { name: 's_blocksize', offset: 0x0c, type: 'u32' },
  { name: 's_maxlen', offset: 0x10, type: 'u32' }, // total blocks in the journal file
  { name: 's_first', offset: 0x14, type: 'u32' }, // first block of log information
  { name: 's_sequence', offset: 0x18, type: 'u32' }, // first commit ID expected in the log
  { name: 's_start', offset: 0x1c, type: 'u32' }, // block of the log start; 0 = clean
  { name: 's_errno', offset: 0x20, type: 'i32' },
] as const);
export type JournalSuperblockV1 = ValueOf<typeof journalSuperblockV1>;

/** Version-2 superblock (what mkfs.ocfs2 writes), 1024 bytes. */
export const journalSuperblock = defineStruct('journal_superblock_t', JBD2_SUPERBLOCK_SIZE, 'be', [
  { name: 'h_magic', offset: 0x00, type: 'u32' },
  { name: 'h_blocktype', offset: 0x04, type: 'u32' },
  { name: 'h_sequence', offset: 0x08, type: 'u32' },
  { name: 's_blocksize', offset: 0x0c, type: 'u32' },
  { name: 's_maxlen', offset: 0x10, type: 'u32' },
  { name: 's_first', offset: 0x14, type: 'u32' },
  { name: 's_sequence', offset: 0x18, type: 'u32' },
  { name: 's_start', offset: 0x1c, type: 'u32' },
  { name: 's_errno', offset: 0x20, type: 'i32' },
  { name: 's_feature_compat', offset: 0x24, type: 'u32' },
  { name: 's_feature_incompat', offset: 0x28, type: 'u32' },
  { name: 's_feature_ro_compat', offset: 0x2c, type: 'u32' },
  { name: 's_uuid', offset: 0x30, type: 'bytes', size: 16 },
  { name: 's_nr_users', offset: 0x40, type: 'u32' },
  { name: 's_dynsuper', offset: 0x44, type: 'u32' },
  { name: 's_max_transaction', offset: 0x48, type: 'u32' },
  { name: 's_max_trans_data', offset: 0x4c, type: 'u32' },
  { name: 's_checksum_type', offset: 0x50, type: 'u8' }, // 0x51..0x53 padding
  { name: 's_num_fc_blks', offset: 0x54, type: 'u32' }, // ext4 fast commit only
  { name: 's_head', offset: 0x58, type: 'u32' }, // newer kernels: log head while clean
  // 0x5c..0xfb: s_padding[40]
  { name: 's_checksum', offset: 0xfc, type: 'u32' }, // crc32c(~0, sb with this field 0), CSUM_V2/V3 only
  { name: 's_users', offset: 0x100, type: 'bytes', size: 16 * 48 },
] as const);
export type JournalSuperblock = ValueOf<typeof journalSuperblock>;

/**
 * Descriptor tags.  The kernel's journal_block_tag_t is
 *   t_blocknr be32 | t_checksum be16 | t_flags be16 | t_blocknr_high be32
 * and is used truncated: 8 bytes without 64BIT, 12 with it, plus 2 bytes of
 * padding with CSUM_V2 (10 or 14).  ocfs2-tools declares the same bytes as
 * t_blocknr be32 | t_flags be32 | t_blocknr_high be32, identical whenever the
 * 16-bit checksum is 0 (flags never exceed 0xF).  CSUM_V3 uses tag3, always 16.
 */
export const journalBlockTag32 = defineStruct('journal_block_tag_t(32)', 8, 'be', [
  { name: 't_blocknr', offset: 0, type: 'u32' },
  { name: 't_checksum', offset: 4, type: 'u16' },
  { name: 't_flags', offset: 6, type: 'u16' },
] as const);
export const journalBlockTag64 = defineStruct('journal_block_tag_t(64)', 12, 'be', [
  { name: 't_blocknr', offset: 0, type: 'u32' },
  { name: 't_checksum', offset: 4, type: 'u16' },
  { name: 't_flags', offset: 6, type: 'u16' },
  { name: 't_blocknr_high', offset: 8, type: 'u32' },
] as const);
export const journalBlockTag3 = defineStruct('journal_block_tag3_t', 16, 'be', [
  { name: 't_blocknr', offset: 0, type: 'u32' },
  { name: 't_flags', offset: 4, type: 'u32' },
  { name: 't_blocknr_high', offset: 8, type: 'u32' },
  { name: 't_checksum', offset: 12, type: 'u32' },
] as const);

/** jbd2_journal_block_tail: last 4 bytes of descriptor and revoke blocks with CSUM_V2/V3. */
export const journalBlockTail = defineStruct('jbd2_journal_block_tail', 4, 'be', [
  { name: 't_checksum', offset: 0, type: 'u32' },
] as const);

/** commit_header. */
export const commitHeader = defineStruct('commit_header', 0x3c, 'be', [
  { name: 'h_magic', offset: 0x00, type: 'u32' },
  { name: 'h_blocktype', offset: 0x04, type: 'u32' },
  { name: 'h_sequence', offset: 0x08, type: 'u32' },
  { name: 'h_chksum_type', offset: 0x0c, type: 'u8' },
  { name: 'h_chksum_size', offset: 0x0d, type: 'u8' },
  // 0x0e..0x0f h_padding[2]
  { name: 'h_chksum', offset: 0x10, type: 'bytes', size: 4 * JBD2_CHECKSUM_BYTES }, // be32[8]; only [0] is used
  { name: 'h_commit_sec', offset: 0x30, type: 'u64n' }, // bigint: garbage must not overflow
  { name: 'h_commit_nsec', offset: 0x38, type: 'u32' },
] as const);
export type CommitHeader = ValueOf<typeof commitHeader>;
/** Offset of h_chksum[0], the word the checksums live in. */
export const COMMIT_CHKSUM0_OFFSET = 0x10;

/** jbd2_journal_revoke_header_t: r_count = bytes used in the block, header included. */
export const revokeHeader = defineStruct('jbd2_journal_revoke_header_t', 16, 'be', [
  { name: 'h_magic', offset: 0x00, type: 'u32' },
  { name: 'h_blocktype', offset: 0x04, type: 'u32' },
  { name: 'h_sequence', offset: 0x08, type: 'u32' },
  { name: 'r_count', offset: 0x0c, type: 'u32' },
] as const);
export type RevokeHeader = ValueOf<typeof revokeHeader>;

// ---------------------------------------------------------------------------
// Journal geometry derived from the superblock features.

export interface JournalFeatures {
  compat: number;
  incompat: number;
  roCompat: number;
}

export function featuresOf(sb: JournalSuperblock): JournalFeatures {
  if (sb.h_blocktype !== JBD2_SUPERBLOCK_V2) return { compat: 0, incompat: 0, roCompat: 0 };
  return { compat: sb.s_feature_compat, incompat: sb.s_feature_incompat, roCompat: sb.s_feature_ro_compat };
}

export const has64bit = (f: JournalFeatures): boolean => (f.incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
export const hasCsumV2 = (f: JournalFeatures): boolean => (f.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
export const hasCsumV3 = (f: JournalFeatures): boolean => (f.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
export const hasCsumV2or3 = (f: JournalFeatures): boolean => hasCsumV2(f) || hasCsumV3(f);
export const hasCompatChecksum = (f: JournalFeatures): boolean => (f.compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0;
export const hasAsyncCommit = (f: JournalFeatures): boolean => (f.incompat & JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT) !== 0;

/** journal_tag_bytes(): 16 with CSUM_V3; else 12 (+2 with CSUM_V2) minus 4 without 64BIT. */
export function tagBytes(f: JournalFeatures): number {
  if (hasCsumV3(f)) return journalBlockTag3.size;
  let sz = journalBlockTag64.size;
  if (hasCsumV2(f)) sz += 2;
  return has64bit(f) ? sz : sz - 4;
}

/** Bytes reserved at the end of descriptor/revoke blocks for the checksum tail. */
export function tailBytes(f: JournalFeatures): number {
  return hasCsumV2or3(f) ? journalBlockTail.size : 0;
}

/** Revoke records are be64 with 64BIT, else be32. */
export function revokeRecordBytes(f: JournalFeatures): number {
  return has64bit(f) ? 8 : 4;
}

// ---------------------------------------------------------------------------
// Superblock

/** Decode journal block 0 (v1 or v2; a v1 superblock reads as v2 with zero features). */
export function decodeJournalSuperblock(buf: Buffer): JournalSuperblock {
  if (buf.length >= JBD2_SUPERBLOCK_SIZE) return journalSuperblock.decode(buf);
  // A short buffer can only carry a v1 superblock.
  const v1 = journalSuperblockV1.decode(buf);
  return { ...journalSuperblock.zero(), ...v1 };
}

export function encodeJournalSuperblock(sb: JournalSuperblock, buf?: Buffer): Buffer {
  return journalSuperblock.encode(sb, buf);
}

/** crc32c(~0) of the 1024-byte superblock with s_checksum taken as 0 (jbd2_superblock_csum). */
export function superblockChecksum(buf: Buffer): number {
  const copy = Buffer.from(buf.subarray(0, JBD2_SUPERBLOCK_SIZE));
  copy.writeUInt32BE(0, journalSuperblock.offsetOf('s_checksum'));
  return crc32c(0xffffffff, copy);
}

/** Seed of every CSUM_V2/V3 checksum: crc32c(~0, s_uuid). */
export function csumSeed(uuid: Buffer): number {
  return crc32c(0xffffffff, uuid);
}

// ---------------------------------------------------------------------------
// Descriptor blocks

export interface DescriptorTag {
  /** Filesystem block number the data block belongs to. */
  blocknr: number;
  /** t_flags (JBD2_FLAG_*). */
  flags: number;
  /** t_checksum: 16 bits with CSUM_V2, 32 with CSUM_V3, else 0. */
  checksum: number;
  /** The 16-byte UUID following the tag when SAME_UUID is clear (if it fits in the block). */
  uuid?: Buffer;
  /** Byte offset of the tag within the descriptor block. */
  offset: number;
}

export class Jbd2TagError extends Error {
  override name = 'Jbd2TagError';
}

function readTag(block: Buffer, off: number, f: JournalFeatures): { blocknr: number; flags: number; checksum: number } {
  if (hasCsumV3(f)) {
    const t = journalBlockTag3.decode(block, off);
    // jbd2 reads the flags as the be16 at tag offset 6, i.e. the low half of tag3's be32 t_flags.
    return { blocknr: combine(t.t_blocknr, has64bit(f) ? t.t_blocknr_high : 0), flags: t.t_flags & 0xffff, checksum: t.t_checksum };
  }
  if (has64bit(f)) {
    const t = journalBlockTag64.decode(block, off);
    return { blocknr: combine(t.t_blocknr, t.t_blocknr_high), flags: t.t_flags, checksum: hasCsumV2(f) ? t.t_checksum : 0 };
  }
  const t = journalBlockTag32.decode(block, off);
  return { blocknr: t.t_blocknr, flags: t.t_flags, checksum: hasCsumV2(f) ? t.t_checksum : 0 };
}

function combine(lo: number, hi: number): number {
  if (hi >= 0x200000) throw new Jbd2TagError(`tag block number high word ${hi} exceeds 2^53`);
  return hi * 0x100000000 + lo;
}

/**
 * The tags of a descriptor block, walked the way jbd2's count_tags() and
 * do_replay() walk them: from offset 12 while a whole tag still fits before
 * the checksum tail, stepping over the UUID after each tag without
 * SAME_UUID, stopping after LAST_TAG.  A tag that would run past the usable
 * area ends the list (it is not a tag).  Throws Jbd2TagError only for a
 * 64-bit block number beyond 2^53.
 */
export function decodeDescriptorTags(block: Buffer, f: JournalFeatures): DescriptorTag[] {
  const tb = tagBytes(f);
  const end = block.length - tailBytes(f);
  const out: DescriptorTag[] = [];
  let off = journalHeader.size;
  while (off + tb <= end) {
    const t = readTag(block, off, f);
    const tag: DescriptorTag = { ...t, offset: off };
    off += tb;
    if (!(t.flags & JBD2_FLAG_SAME_UUID)) {
      if (off + 16 <= block.length) tag.uuid = Buffer.from(block.subarray(off, off + 16));
      off += 16;
    }
    out.push(tag);
    if (t.flags & JBD2_FLAG_LAST_TAG) break;
  }
  return out;
}

export interface DescriptorTagInput {
  blocknr: number;
  flags: number;
  checksum?: number;
  /** Written after the tag when SAME_UUID is clear (zeros if absent). */
  uuid?: Buffer;
}

/**
 * Build a descriptor block.  Flags are written as given (callers set
 * SAME_UUID/LAST_TAG); throws Jbd2TagError when the tags do not fit.
 * With CSUM_V2/V3 and a `seed`, the tail checksum is filled in.
 */
export function encodeDescriptorBlock(
  sequence: number, tags: readonly DescriptorTagInput[], f: JournalFeatures, blockSize: number, seed?: number,
): Buffer {
  const block = Buffer.alloc(blockSize);
  journalHeader.encode({ h_magic: JBD2_MAGIC, h_blocktype: JBD2_DESCRIPTOR_BLOCK, h_sequence: sequence }, block);
  const tb = tagBytes(f);
  const end = blockSize - tailBytes(f);
  let off = journalHeader.size;
  for (const t of tags) {
    const withUuid = !(t.flags & JBD2_FLAG_SAME_UUID);
    if (off + tb + (withUuid ? 16 : 0) > end) throw new Jbd2TagError(`descriptor tags do not fit in ${blockSize} bytes`);
    const lo = t.blocknr % 0x100000000;
    const hi = Math.floor(t.blocknr / 0x100000000);
    if (hi !== 0 && !has64bit(f)) throw new Jbd2TagError(`block ${t.blocknr} needs the 64BIT feature`);
    const cs = t.checksum ?? 0;
    if (hasCsumV3(f)) {
      journalBlockTag3.encode({ t_blocknr: lo, t_flags: t.flags, t_blocknr_high: hi, t_checksum: cs }, block, off);
    } else if (has64bit(f)) {
      journalBlockTag64.encode({ t_blocknr: lo, t_checksum: cs & 0xffff, t_flags: t.flags, t_blocknr_high: hi }, block, off);
    } else {
      journalBlockTag32.encode({ t_blocknr: lo, t_checksum: cs & 0xffff, t_flags: t.flags }, block, off);
    }
    off += tb;
    if (withUuid) {
      if (t.uuid) t.uuid.copy(block, off, 0, 16);
      off += 16;
    }
  }
  if (hasCsumV2or3(f) && seed !== undefined) setBlockTailChecksum(block, seed);
  return block;
}

/** Checksum of a descriptor or revoke block: crc32c(seed, block with the tail zeroed). */
export function blockTailChecksum(block: Buffer, seed: number): number {
  const copy = Buffer.from(block);
  copy.writeUInt32BE(0, copy.length - 4);
  return crc32c(seed, copy);
}

export function setBlockTailChecksum(block: Buffer, seed: number): void {
  block.writeUInt32BE(blockTailChecksum(block, seed), block.length - 4);
}

export function verifyBlockTailChecksum(block: Buffer, seed: number): boolean {
  return block.readUInt32BE(block.length - 4) === blockTailChecksum(block, seed);
}

/** Data block checksum of a tag: crc32c(crc32c(seed, be32 sequence), block as logged). */
export function dataBlockChecksum(seed: number, sequence: number, data: Buffer): number {
  const seq = Buffer.alloc(4);
  seq.writeUInt32BE(sequence >>> 0);
  return crc32c(crc32c(seed, seq), data);
}

/** Does the tag's checksum match its data block (tag3: all 32 bits; v2 tag: low 16)? */
export function verifyTagChecksum(f: JournalFeatures, seed: number, sequence: number, tagChecksum: number, data: Buffer): boolean {
  if (!hasCsumV2or3(f)) return true;
  const c = dataBlockChecksum(seed, sequence, data);
  return hasCsumV3(f) ? (c >>> 0) === (tagChecksum >>> 0) : (c & 0xffff) === (tagChecksum & 0xffff);
}

// ---------------------------------------------------------------------------
// Commit blocks

export interface CommitInput {
  sequence: number;
  commitSec?: bigint;
  commitNsec?: number;
  chksumType?: number;
  chksumSize?: number;
  /** h_chksum[0] */
  chksum0?: number;
}

export function encodeCommitBlock(c: CommitInput, blockSize: number, f?: JournalFeatures, seed?: number): Buffer {
  const block = Buffer.alloc(blockSize);
  const chk = Buffer.alloc(4 * JBD2_CHECKSUM_BYTES);
  chk.writeUInt32BE((c.chksum0 ?? 0) >>> 0, 0);
  commitHeader.encode({
    h_magic: JBD2_MAGIC, h_blocktype: JBD2_COMMIT_BLOCK, h_sequence: c.sequence,
    h_chksum_type: c.chksumType ?? 0, h_chksum_size: c.chksumSize ?? 0, h_chksum: chk,
    h_commit_sec: c.commitSec ?? 0n, h_commit_nsec: c.commitNsec ?? 0,
  }, block);
  if (f && hasCsumV2or3(f) && seed !== undefined) {
    block.writeUInt32BE(commitBlockChecksum(block, seed), COMMIT_CHKSUM0_OFFSET);
  }
  return block;
}

export function decodeCommitBlock(block: Buffer): CommitHeader & { chksum0: number } {
  const h = commitHeader.decode(block);
  return { ...h, chksum0: h.h_chksum.readUInt32BE(0) };
}

/** CSUM_V2/V3 commit checksum: crc32c(seed, whole block with h_chksum[0] = 0). */
export function commitBlockChecksum(block: Buffer, seed: number): number {
  const copy = Buffer.from(block);
  copy.writeUInt32BE(0, COMMIT_CHKSUM0_OFFSET);
  return crc32c(seed, copy);
}

// ---------------------------------------------------------------------------
// Revoke blocks

/**
 * The block numbers of a revoke block: records from offset 16 up to r_count.
 * Returns null when r_count runs past the block (jbd2's scan_revoke_records
 * fails the recovery with EINVAL); an r_count below the header holds no
 * records (jbd2 ignores it too).
 */
export function decodeRevokeRecords(block: Buffer, f: JournalFeatures): number[] | null {
  const h = revokeHeader.decode(block);
  const rec = revokeRecordBytes(f);
  if (h.r_count > block.length - tailBytes(f)) return null;
  const out: number[] = [];
  for (let off = revokeHeader.size; off + rec <= h.r_count; off += rec) {
    if (rec === 4) out.push(block.readUInt32BE(off));
    else {
      const v = block.readBigUInt64BE(off);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      out.push(Number(v));
    }
  }
  return out;
}

/** Build a revoke block; throws Jbd2TagError when the records do not fit. */
export function encodeRevokeBlock(sequence: number, blocks: readonly number[], f: JournalFeatures, blockSize: number, seed?: number): Buffer {
  const block = Buffer.alloc(blockSize);
  const rec = revokeRecordBytes(f);
  const count = revokeHeader.size + rec * blocks.length;
  if (count > blockSize - tailBytes(f)) throw new Jbd2TagError(`${blocks.length} revoke records do not fit in ${blockSize} bytes`);
  revokeHeader.encode({ h_magic: JBD2_MAGIC, h_blocktype: JBD2_REVOKE_BLOCK, h_sequence: sequence, r_count: count }, block);
  let off = revokeHeader.size;
  for (const b of blocks) {
    if (rec === 4) {
      if (b > 0xffffffff) throw new Jbd2TagError(`revoke of block ${b} needs the 64BIT feature`);
      block.writeUInt32BE(b, off);
    } else block.writeBigUInt64BE(BigInt(b), off);
    off += rec;
  }
  if (hasCsumV2or3(f) && seed !== undefined) setBlockTailChecksum(block, seed);
  return block;
}

// ---------------------------------------------------------------------------
// COMPAT_CHECKSUM: crc32_be (MSB-first, poly 0x04C11DB7, no inversion), as
// the kernel's crc32_be(); the running sum over descriptor + data blocks of a
// transaction, seeded with ~0, is stored in the commit block's h_chksum[0].

const CRC32_BE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32_be(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (let i = 0; i < data.length; i++) c = (CRC32_BE_TABLE[((c >>> 24) ^ data[i]!) & 0xff]! ^ (c << 8)) >>> 0;
  return c >>> 0;
}

/**
 * The first block of a freshly formatted OCFS2 journal (libocfs2
 * ocfs2_init_journal_superblock): V2, s_first 1 (2 at 512-byte blocks,
 * where the 1 KiB structure spans two blocks), s_start 1, sequence 1, one
 * user, the volume's UUID.  Only the first fs block is written, so at
 * 512-byte blocks the second half of the structure stays zero.
 */
export function newJournalSuperblockBlock(blockSize: number, maxlen: number, uuid: Buffer, incompat: number): Buffer {
  const full = Buffer.alloc(Math.max(blockSize, JBD2_SUPERBLOCK_SIZE));
  journalSuperblock.encode({
    ...journalSuperblock.zero(),
    h_magic: JBD2_MAGIC, h_blocktype: JBD2_SUPERBLOCK_V2,
    s_blocksize: blockSize, s_maxlen: maxlen,
    s_first: blockSize === 512 ? 2 : 1,
    s_start: 1, s_sequence: 1, s_nr_users: 1,
    s_feature_incompat: incompat,
    s_uuid: Buffer.from(uuid),
  }, full, 0);
  return Buffer.from(full.subarray(0, blockSize));
}
