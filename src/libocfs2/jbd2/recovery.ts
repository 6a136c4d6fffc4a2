/**
 * JBD2 journal recovery, following the kernel's fs/jbd2/recovery.c:
 *
 *   PASS_SCAN   walk the log from s_start expecting s_sequence, to find the
 *               first transaction without a valid commit (end_transaction);
 *   PASS_REVOKE collect revoke records: block -> newest revoking transaction;
 *   PASS_REPLAY copy every tagged data block of transactions start..end-1 to
 *               its filesystem block, unless a revoke from the same or a later
 *               transaction covers it; unescape ESCAPE'd blocks.
 *
 * Nothing is written: the result is a map of filesystem block -> final
 * content that the caller writes, followed by the superblock from
 * `superblockAfterReplay` (and, for OCFS2, clearing the journal dinode's
 * dirty flag).  Malformed logs end the scan where jbd2 ends it, or raise
 * Ocfs2CorruptError where jbd2 fails the recovery; every walk is bounded by
 * the log size so a hostile log cannot loop.
 */
import { Ocfs2CorruptError, Ocfs2UnsupportedError } from '../errors';
import {
  JBD2_COMMIT_BLOCK, JBD2_CRC32C_CHKSUM, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_DESCRIPTOR_BLOCK,
  JBD2_FLAG_ESCAPE, JBD2_KNOWN_COMPAT, JBD2_KNOWN_INCOMPAT, JBD2_KNOWN_RO_COMPAT, JBD2_MAGIC, JBD2_REVOKE_BLOCK,
  JBD2_SUPERBLOCK_SIZE, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2, type DescriptorTag, type JournalFeatures,
  type JournalSuperblock, COMMIT_CHKSUM0_OFFSET, Jbd2TagError, commitBlockChecksum, commitHeader, crc32_be,
  csumSeed, decodeCommitBlock, decodeDescriptorTags, decodeJournalSuperblock, decodeRevokeRecords,
  featuresOf, hasAsyncCommit, hasCompatChecksum, hasCsumV2, hasCsumV2or3, hasCsumV3, journalHeader,
  journalSuperblock, superblockChecksum, verifyBlockTailChecksum, verifyTagChecksum,
} from './structs';

/** Access to one journal file, block by block (n = block index within the journal file). */
export interface JournalReader {
  blockSize: number;
  /** Blocks in the journal file (the inode's size / block size). */
  maxLen: number;
  readLogBlock(n: number): Promise<Buffer>;
  /** Optional: the filesystem block behind journal block n, used only to name blocks in errors. */
  physicalBlock?(n: number): number;
}

export interface RecoverOptions {
  /**
   * Filesystem size in blocks: a tag naming a block at or beyond it makes the
   * journal unreplayable (fsck.ocfs2 refuses such journals, OCFS2_ET_BAD_JOURNAL_TAG).
   */
  fsBlockCount?: number;
  /**
   * jbd2 replays the rest but fails the recovery when a CSUM_V2/V3 data block
   * checksum is wrong.  By default that raises Ocfs2CorruptError; with this
   * set the bad blocks are skipped and listed in `checksumErrors`.
   */
  allowDataChecksumErrors?: boolean;
  /**
   * Checks a block about to be replayed onto fs block `home`; a string is the
   * failed check, and recovery stops with Ocfs2CorruptError naming the
   * journal block (nothing is written: replay writes only after the scan).
   */
  checkHome?: (home: number, data: Buffer) => string | null;
}

export interface RecoveryResult {
  /** s_start != 0: the log had to be scanned. */
  needed: boolean;
  superblock: JournalSuperblock;
  /** First transaction in the log (s_sequence). */
  startSeq: number;
  /** First transaction NOT replayed (jbd2 info.end_transaction). */
  endSeq: number;
  /** Committed transactions replayed: endSeq - startSeq. */
  transactions: number;
  /** Filesystem block -> content after replay (later transactions win). */
  blocks: Map<number, Buffer>;
  /** Tagged blocks copied (counting overwrites), revoke hits, revoke records seen. */
  replayed: number;
  revokeHits: number;
  revokeRecords: number;
  /** Journal block after the last replayed commit (jbd2 info.head_block). */
  headBlock: number;
  checksumErrors: Array<{ logBlock: number; fsBlock: number; sequence: number }>;
}

/** The journal is clean (nothing to replay) iff s_start == 0. */
export function isJournalClean(sb: JournalSuperblock): boolean {
  return sb.s_start === 0;
}

const u32 = (x: number): number => x >>> 0;
/** tid_gt / tid_geq: sequence comparison modulo 2^32. */
export const tidGt = (x: number, y: number): boolean => ((x - y) | 0) > 0;
export const tidGeq = (x: number, y: number): boolean => ((x - y) | 0) >= 0;

/** Validated journal geometry. */
export interface JournalGeometry {
  sb: JournalSuperblock;
  /** The raw superblock bytes (whole journal blocks covering 1024 bytes). */
  raw: Buffer;
  features: JournalFeatures;
  blockSize: number;
  first: number;
  /** j_last: one past the last log block (= s_maxlen). */
  last: number;
  seed: number;
}

function corrupt(r: JournalReader, n: number, check: string, detail?: string): Ocfs2CorruptError {
  const phys = r.physicalBlock?.(n);
  const where = `journal block ${n}${phys !== undefined ? ` (fs block ${phys})` : ''}`;
  return new Ocfs2CorruptError(phys ?? n, `jbd2 ${check}`, detail ? `${where}: ${detail}` : where);
}

async function readBlock(r: JournalReader, n: number): Promise<Buffer> {
  const b = await r.readLogBlock(n);
  if (b.length !== r.blockSize) throw corrupt(r, n, 'short read', `got ${b.length} bytes, expected ${r.blockSize}`);
  return b;
}

/** Read and read the journal superblock bytes (1024 bytes may span two 512-byte blocks). */
export async function readJournalSuperblockBytes(r: JournalReader): Promise<Buffer> {
  const nblocks = Math.max(1, Math.ceil(JBD2_SUPERBLOCK_SIZE / r.blockSize));
  const parts: Buffer[] = [];
  for (let i = 0; i < nblocks; i++) parts.push(await readBlock(r, i));
  return Buffer.concat(parts);
}

/**
 * Check the superblock the way jbd2's journal_get_superblock/load_superblock
 * and jbd2_journal_load do, and derive the log geometry.
 */
export function checkJournalSuperblock(r: JournalReader, raw: Buffer): JournalGeometry {
  const hdr = journalHeader.decode(raw);
  if (hdr.h_magic !== JBD2_MAGIC) throw corrupt(r, 0, 'superblock magic', `0x${hdr.h_magic.toString(16)}, expected 0x${JBD2_MAGIC.toString(16)}`);
  if (hdr.h_blocktype !== JBD2_SUPERBLOCK_V1 && hdr.h_blocktype !== JBD2_SUPERBLOCK_V2) {
    throw corrupt(r, 0, 'superblock block type', `${hdr.h_blocktype}, expected 3 or 4`);
  }
  const sb = decodeJournalSuperblock(raw);
  if (sb.s_blocksize !== r.blockSize) throw corrupt(r, 0, 'superblock s_blocksize', `${sb.s_blocksize}, journal block size is ${r.blockSize}`);
  if (sb.s_maxlen > r.maxLen) throw corrupt(r, 0, 'superblock s_maxlen', `${sb.s_maxlen} blocks, journal file has ${r.maxLen}`);
  if (sb.s_first === 0 || sb.s_first >= sb.s_maxlen) throw corrupt(r, 0, 'superblock s_first', `${sb.s_first} outside 1..${sb.s_maxlen - 1}`);
  const f = featuresOf(sb);
  if (hasCsumV2(f) && hasCsumV3(f)) throw corrupt(r, 0, 'superblock features', 'both CSUM_V2 and CSUM_V3 set');
  if (hasCsumV2or3(f) && hasCompatChecksum(f)) throw corrupt(r, 0, 'superblock features', 'COMPAT_CHECKSUM together with CSUM_V2/V3');
  if ((f.compat & ~JBD2_KNOWN_COMPAT) || (f.incompat & ~JBD2_KNOWN_INCOMPAT) || (f.roCompat & ~JBD2_KNOWN_RO_COMPAT)) {
    throw new Ocfs2UnsupportedError(`jbd2: unknown journal features compat 0x${f.compat.toString(16)} incompat 0x${f.incompat.toString(16)} ro_compat 0x${f.roCompat.toString(16)}`);
  }
  if (hasCsumV2or3(f)) {
    if (sb.s_checksum_type !== JBD2_CRC32C_CHKSUM) throw corrupt(r, 0, 'superblock s_checksum_type', `${sb.s_checksum_type}, expected crc32c (4)`);
    const c = superblockChecksum(raw);
    if (c !== sb.s_checksum) throw corrupt(r, 0, 'superblock checksum', `stored 0x${sb.s_checksum.toString(16)}, computed 0x${c.toString(16)}`);
  }
  if (sb.s_start !== 0 && sb.s_start >= sb.s_maxlen) {
    throw corrupt(r, 0, 'superblock s_start', `${sb.s_start} outside the log ${sb.s_first}..${sb.s_maxlen - 1}`);
  }
  if (sb.s_start !== 0 && sb.s_start < sb.s_first) {
    // mkfs.ocfs2 writes s_start = 1 into every new journal, also on 512-byte
    // blocks where the 1 KiB superblock makes s_first 2.  jbd2 does not check
    // s_start: its scan reads block 1 (the superblock's second half), finds no
    // header magic and recovers nothing.  Same result: an empty log.
    sb.s_start = 0;
  }
  return {
    sb, raw, features: f, blockSize: r.blockSize, first: sb.s_first, last: sb.s_maxlen,
    seed: hasCsumV2or3(f) ? csumSeed(sb.s_uuid) : 0,
  };
}

export async function loadJournal(r: JournalReader): Promise<JournalGeometry> {
  return checkJournalSuperblock(r, await readJournalSuperblockBytes(r));
}

// ---------------------------------------------------------------------------

const PASS_SCAN = 0;
const PASS_REVOKE = 1;
const PASS_REPLAY = 2;
type Pass = typeof PASS_SCAN | typeof PASS_REVOKE | typeof PASS_REPLAY;

interface Info {
  startTransaction: number;
  endTransaction: number | null;
  headBlock: number | null;
  nrReplays: number;
  nrRevokes: number;
  nrRevokeHits: number;
  revoke: Map<number, number>;
  blocks: Map<number, Buffer>;
  checksumErrors: Array<{ logBlock: number; fsBlock: number; sequence: number }>;
}

class Cursor {
  private headers = 0;
  constructor(private readonly r: JournalReader, private readonly g: JournalGeometry, public next: number) {}
  /**
   * Take the next log block index, wrapping from j_last to j_first.  Blocks
   * read as headers are counted: a real log has fewer than the log size, so
   * more means the walk is circling (e.g. a log of nothing but revoke
   * blocks of one transaction, which jbd2 itself would walk forever).
   */
  take(header = false): number {
    const n = this.next;
    if (header && ++this.headers > this.g.last - this.g.first) {
      throw corrupt(this.r, n, 'log runs around the whole journal', `more than ${this.g.last - this.g.first} log blocks without reaching its end`);
    }
    this.next = this.wrap(n + 1);
    return n;
  }
  skip(count: number): void {
    // Like jbd2's next_log_block += count_tags(): may go round more than once for a garbage count.
    this.next = this.g.first + ((this.next - this.g.first + count) % (this.g.last - this.g.first));
  }
  wrap(n: number): number {
    return n >= this.g.last ? n - (this.g.last - this.g.first) : n;
  }
}

function tagsOf(r: JournalReader, n: number, block: Buffer, f: JournalFeatures): DescriptorTag[] {
  try {
    return decodeDescriptorTags(block, f);
  } catch (e) {
    if (e instanceof Jbd2TagError) throw corrupt(r, n, 'descriptor tag', e.message);
    throw e;
  }
}

/** jbd2_commit_block_csum_verify_partial: a commit block torn after its header. */
function commitCsumVerifyPartial(block: Buffer, seed: number): boolean {
  const tmp = Buffer.alloc(block.length);
  block.copy(tmp, 0, 0, commitHeader.size);
  return block.readUInt32BE(COMMIT_CHKSUM0_OFFSET) === commitBlockChecksum(tmp, seed);
}

async function doOnePass(r: JournalReader, g: JournalGeometry, info: Info, pass: Pass, opts: RecoverOptions): Promise<void> {
  const f = g.features;
  let nextCommit = g.sb.s_sequence;
  const cur = new Cursor(r, g, g.sb.s_start);
  let headBlock = cur.next;
  let crc32Sum = 0xffffffff;
  let needCheckCommitTime = false;
  let lastCommitTime = 0n;
  if (pass === PASS_SCAN) info.startTransaction = nextCommit;

  scan: for (;;) {
    if (pass !== PASS_SCAN && tidGeq(nextCommit, info.endTransaction!)) break;
    const n = cur.take(true);
    const bh = await readBlock(r, n);
    const hdr = journalHeader.decode(bh);
    // End of log: a block that is not a journal block of the expected transaction.
    if (hdr.h_magic !== JBD2_MAGIC) break;
    if (hdr.h_sequence !== nextCommit) break;

    switch (hdr.h_blocktype) {
      case JBD2_DESCRIPTOR_BLOCK: {
        if (hasCsumV2or3(f) && !verifyBlockTailChecksum(bh, g.seed)) {
          // PASS_SCAN may meet stale blocks: decide at the commit block.
          if (pass !== PASS_SCAN) throw corrupt(r, n, 'descriptor block checksum', `transaction ${nextCommit}`);
          needCheckCommitTime = true;
        }
        const tags = tagsOf(r, n, bh, f);
        if (pass !== PASS_REPLAY) {
          if (pass === PASS_SCAN && hasCompatChecksum(f) && info.endTransaction === null) {
            // calc_chksums: crc32_be over the descriptor and its data blocks.
            crc32Sum = crc32_be(crc32Sum, bh);
            for (let i = 0; i < tags.length; i++) crc32Sum = crc32_be(crc32Sum, await readBlock(r, cur.take()));
            continue scan;
          }
          cur.skip(tags.length);
          continue scan;
        }
        for (const tag of tags) {
          const io = cur.take();
          const data = await readBlock(r, io);
          if (opts.fsBlockCount !== undefined && tag.blocknr >= opts.fsBlockCount) {
            throw corrupt(r, n, 'descriptor tag block number', `tag names fs block ${tag.blocknr}, filesystem has ${opts.fsBlockCount}`);
          }
          const rev = info.revoke.get(tag.blocknr);
          if (rev !== undefined && !tidGt(nextCommit, rev)) {
            info.nrRevokeHits++;
            continue;
          }
          if (!verifyTagChecksum(f, g.seed, nextCommit, tag.checksum, data)) {
            info.checksumErrors.push({ logBlock: io, fsBlock: tag.blocknr, sequence: nextCommit });
            continue;
          }
          const out = Buffer.from(data);
          if (tag.flags & JBD2_FLAG_ESCAPE) out.writeUInt32BE(JBD2_MAGIC, 0);
          const bad = opts.checkHome?.(tag.blocknr, out);
          if (bad) throw corrupt(r, io, 'replayed block fails the check of its home', `transaction ${nextCommit}, home fs block ${tag.blocknr}: ${bad}`);
          info.blocks.set(tag.blocknr, out);
          info.nrReplays++;
        }
        continue scan;
      }

      case JBD2_COMMIT_BLOCK: {
        if (pass !== PASS_SCAN) {
          nextCommit = u32(nextCommit + 1);
          continue scan;
        }
        const cb = decodeCommitBlock(bh);
        const commitTime = cb.h_commit_sec;
        let ok = false;
        if (needCheckCommitTime) {
          // A checksum failed earlier in this transaction: if time went
          // forward it is real corruption, else a stale block ends the log.
          if (commitTime >= lastCommitTime) throw corrupt(r, n, 'checksum', `invalid descriptor or revoke checksum in transaction ${nextCommit}`);
          break scan;
        }
        if (hasCompatChecksum(f)) {
          if (info.endTransaction !== null) break scan;
          const found = cb.chksum0;
          ok = (crc32Sum === found && cb.h_chksum_type === JBD2_CRC32_CHKSUM && cb.h_chksum_size === JBD2_CRC32_CHKSUM_SIZE)
            || (cb.h_chksum_type === 0 && cb.h_chksum_size === 0 && found === 0);
          crc32Sum = 0xffffffff;
        } else if (!hasCsumV2or3(f)) {
          ok = true;
        } else {
          ok = bh.readUInt32BE(COMMIT_CHKSUM0_OFFSET) === commitBlockChecksum(bh, g.seed)
            || commitCsumVerifyPartial(bh, g.seed);
        }
        if (!ok) {
          // chksum_error
          if (commitTime < lastCommitTime) break scan; // stale: ignore, end here
          info.endTransaction = nextCommit;
          info.headBlock = headBlock;
          if (!hasAsyncCommit(f)) break scan;
        }
        lastCommitTime = commitTime;
        headBlock = cur.next;
        nextCommit = u32(nextCommit + 1);
        continue scan;
      }

      case JBD2_REVOKE_BLOCK: {
        if (pass === PASS_REPLAY) continue scan;
        if (pass === PASS_SCAN && hasCsumV2or3(f) && !verifyBlockTailChecksum(bh, g.seed)) needCheckCommitTime = true;
        const recs = decodeRevokeRecords(bh, f);
        if (recs === null) throw corrupt(r, n, 'revoke block r_count', `r_count ${bh.readUInt32BE(12)} out of range`);
        if (pass === PASS_SCAN) {
          info.nrRevokes += recs.length;
        } else {
          for (const b of recs) {
            const prev = info.revoke.get(b);
            if (prev === undefined || tidGt(nextCommit, prev)) info.revoke.set(b, nextCommit);
          }
        }
        continue scan;
      }

      default:
        break scan;
    }
  }

  if (pass === PASS_SCAN) {
    if (info.endTransaction === null) info.endTransaction = nextCommit;
    if (info.headBlock === null) info.headBlock = headBlock;
  } else if (info.endTransaction !== nextCommit) {
    throw corrupt(r, cur.next, 'recovery passes disagree', `pass ${pass} ended at transaction ${nextCommit}, scan found ${info.endTransaction}`);
  }
}

/**
 * Recover a journal: returns what replay would write.  Nothing is written.
 * A clean journal (s_start == 0) gives needed=false and an empty map.
 */
export async function recoverJournal(r: JournalReader, opts: RecoverOptions = {}): Promise<RecoveryResult> {
  const g = await loadJournal(r);
  const info: Info = {
    startTransaction: g.sb.s_sequence, endTransaction: null, headBlock: null,
    nrReplays: 0, nrRevokes: 0, nrRevokeHits: 0, revoke: new Map(), blocks: new Map(), checksumErrors: [],
  };
  if (isJournalClean(g.sb)) {
    return {
      needed: false, superblock: g.sb, startSeq: g.sb.s_sequence, endSeq: g.sb.s_sequence, transactions: 0,
      blocks: info.blocks, replayed: 0, revokeHits: 0, revokeRecords: 0, headBlock: 0, checksumErrors: [],
    };
  }
  await doOnePass(r, g, info, PASS_SCAN, opts);
  await doOnePass(r, g, info, PASS_REVOKE, opts);
  await doOnePass(r, g, info, PASS_REPLAY, opts);
  if (info.checksumErrors.length > 0 && !opts.allowDataChecksumErrors) {
    const e = info.checksumErrors[0]!;
    throw corrupt(r, e.logBlock, 'data block checksum', `fs block ${e.fsBlock} in transaction ${e.sequence}`);
  }
  const endSeq = info.endTransaction!;
  return {
    needed: true, superblock: g.sb, startSeq: info.startTransaction, endSeq,
    transactions: u32(endSeq - info.startTransaction), blocks: info.blocks, replayed: info.nrReplays,
    revokeHits: info.nrRevokeHits, revokeRecords: info.nrRevokes, headBlock: info.headBlock!,
    checksumErrors: info.checksumErrors,
  };
}

/**
 * The journal superblock bytes to write after the replay has reached disk:
 * s_start = 0 (empty log) and s_sequence = endSeq + 1, as jbd2 (which
 * restarts at ++end_transaction) and fsck.ocfs2 do; the CSUM_V2/V3
 * superblock checksum is recomputed.  `raw` is the superblock as read
 * (whole blocks); a modified copy of the same length is returned.
 */
export function superblockAfterReplay(raw: Buffer, endSeq: number): Buffer {
  const out = Buffer.from(raw);
  const sb = journalSuperblock.decode(out);
  out.writeUInt32BE(0, journalSuperblock.offsetOf('s_start'));
  out.writeUInt32BE(u32(endSeq + 1), journalSuperblock.offsetOf('s_sequence'));
  if (hasCsumV2or3(featuresOf(sb))) {
    out.writeUInt32BE(superblockChecksum(out), journalSuperblock.offsetOf('s_checksum'));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Read-only transaction walker (for a logdump-style tool).

export type LogEntry =
  | { kind: 'descriptor'; logBlock: number; checksumOk: boolean | null;
      tags: Array<DescriptorTag & { dataLogBlock: number; dataChecksumOk: boolean | null }> }
  | { kind: 'revoke'; logBlock: number; checksumOk: boolean | null; records: number[] | null }
  | { kind: 'commit'; logBlock: number; checksumOk: boolean | null; commitSec: bigint; commitNsec: number;
      chksumType: number; chksumSize: number; chksum0: number };

export interface TransactionInfo {
  sequence: number;
  entries: LogEntry[];
  committed: boolean;
}

export interface WalkResult {
  superblock: JournalSuperblock;
  transactions: TransactionInfo[];
  /** Where and why the walk stopped. */
  end: { logBlock: number; reason: 'bad magic' | 'sequence mismatch' | 'unknown block type' | 'log wrapped' };
}

export interface WalkOptions {
  /** Start block (default s_start, or s_first when the journal is clean). */
  start?: number;
  /** Expected first sequence (default s_sequence); with `anySequence`, taken from the first block. */
  sequence?: number;
  anySequence?: boolean;
}

/**
 * List the transactions of the log, the way the recovery scan sees them, with
 * every descriptor tag, revoke record and commit; checksums are reported, not
 * enforced (null where the journal has no such checksum).  Never throws on
 * log contents beyond the superblock.
 */
export async function walkTransactions(r: JournalReader, opts: WalkOptions = {}): Promise<WalkResult> {
  const g = await loadJournal(r);
  const f = g.features;
  const csum = hasCsumV2or3(f);
  let n = opts.start ?? (g.sb.s_start !== 0 ? g.sb.s_start : g.first);
  if (n < g.first || n >= g.last) throw corrupt(r, n, 'walk start', `outside the log ${g.first}..${g.last - 1}`);
  let seq: number | null = opts.anySequence ? null : (opts.sequence ?? g.sb.s_sequence);
  const transactions: TransactionInfo[] = [];
  const logLen = g.last - g.first;
  let used = 0;
  const wrap = (x: number): number => (x >= g.last ? x - logLen : x);
  let cur: TransactionInfo | null = null;
  let end: WalkResult['end'];
  for (;;) {
    if (used >= logLen) { end = { logBlock: n, reason: 'log wrapped' }; break; }
    const here = n;
    const bh = await readBlock(r, here);
    const hdr = journalHeader.decode(bh);
    if (hdr.h_magic !== JBD2_MAGIC) { end = { logBlock: here, reason: 'bad magic' }; break; }
    if (seq === null) seq = hdr.h_sequence;
    if (hdr.h_sequence !== seq) { end = { logBlock: here, reason: 'sequence mismatch' }; break; }
    if (hdr.h_blocktype !== JBD2_DESCRIPTOR_BLOCK && hdr.h_blocktype !== JBD2_COMMIT_BLOCK && hdr.h_blocktype !== JBD2_REVOKE_BLOCK) {
      end = { logBlock: here, reason: 'unknown block type' }; break;
    }
    n = wrap(n + 1); used++;
    if (!cur) { cur = { sequence: seq, entries: [], committed: false }; transactions.push(cur); }
    if (hdr.h_blocktype === JBD2_DESCRIPTOR_BLOCK) {
      let tags: DescriptorTag[];
      try { tags = decodeDescriptorTags(bh, f); } catch { tags = []; }
      const out: Array<DescriptorTag & { dataLogBlock: number; dataChecksumOk: boolean | null }> = [];
      for (const t of tags) {
        if (used >= logLen) break;
        const dataLogBlock = n;
        let dataChecksumOk: boolean | null = null;
        if (csum) dataChecksumOk = verifyTagChecksum(f, g.seed, seq, t.checksum, await readBlock(r, dataLogBlock));
        out.push({ ...t, dataLogBlock, dataChecksumOk });
        n = wrap(n + 1); used++;
      }
      cur.entries.push({ kind: 'descriptor', logBlock: here, checksumOk: csum ? verifyBlockTailChecksum(bh, g.seed) : null, tags: out });
    } else if (hdr.h_blocktype === JBD2_REVOKE_BLOCK) {
      cur.entries.push({ kind: 'revoke', logBlock: here, checksumOk: csum ? verifyBlockTailChecksum(bh, g.seed) : null, records: decodeRevokeRecords(bh, f) });
    } else {
      const c = decodeCommitBlock(bh);
      cur.entries.push({
        kind: 'commit', logBlock: here,
        checksumOk: csum ? c.chksum0 === commitBlockChecksum(bh, g.seed) : null,
        commitSec: c.h_commit_sec, commitNsec: c.h_commit_nsec,
        chksumType: c.h_chksum_type, chksumSize: c.h_chksum_size, chksum0: c.chksum0,
      });
      cur.committed = true;
      cur = null;
      seq = u32(seq + 1);
    }
  }
  return { superblock: g.sb, transactions, end };
}
