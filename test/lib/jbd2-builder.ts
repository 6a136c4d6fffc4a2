/**
 * An in-memory JBD2 journal written with our encoders the way jbd2's commit
 * code lays it out (descriptor, data, revoke, commit; v2/v3 and
 * COMPAT_CHECKSUM checksums).  jbd2-synthetic replays it with our recovery;
 * jbd2-e2fsprogs has e2fsck replay the same bytes, the outside judge.
 */
import {
  JBD2_CRC32_CHKSUM, JBD2_CRC32C_CHKSUM, JBD2_FEATURE_COMPAT_CHECKSUM,
  JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_MAGIC, JBD2_SUPERBLOCK_V2, crc32_be, csumSeed,
  dataBlockChecksum, encodeCommitBlock, encodeDescriptorBlock, encodeRevokeBlock, journalSuperblock,
  superblockChecksum, tagBytes, type JournalFeatures, type JournalReader,
} from '../../src/libocfs2/jbd2';

export const UUID = Buffer.from('d795e419c88d41df8d9492349620b801', 'hex');

export interface Txn {
  blocks?: Array<{ blocknr: number; data: Buffer }>;
  revokes?: number[];
  commit?: boolean; // default true
  commitSec?: bigint;
  /** Tags per descriptor block (default: as many as fit). */
  perDescriptor?: number;
}

/** An in-memory journal file written the way jbd2's commit code lays it out. */
export class JournalBuilder {
  readonly blocks: Buffer[];
  readonly f: JournalFeatures;
  readonly seed: number;
  next: number;
  seq: number;
  /** When a block was last written (to corrupt it in tests). */
  readonly where = new Map<string, number>();
  constructor(readonly bs: number, readonly maxLen: number, incompat: number, compat = 0, opts: { first?: number; start?: number; sequence?: number } = {}) {
    this.blocks = Array.from({ length: maxLen }, () => Buffer.alloc(bs));
    this.f = { compat, incompat, roCompat: 0 };
    this.seed = csumSeed(UUID);
    this.first = opts.first ?? Math.max(1, Math.ceil(1024 / bs));
    this.start = opts.start ?? this.first;
    this.next = this.start;
    this.seq = opts.sequence ?? 1;
    this.startSeq = this.seq;
  }
  first: number;
  start: number;
  startSeq: number;
  private put(b: Buffer): number {
    const n = this.next;
    b.copy(this.blocks[n]!);
    this.next = n + 1 >= this.maxLen ? this.first : n + 1;
    return n;
  }
  get csum(): boolean { return (this.f.incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)) !== 0; }
  txn(x: Txn): number {
    const seq = this.seq;
    const data = x.blocks ?? [];
    let crc = 0xffffffff;
    const room = Math.floor((this.bs - 12 - (this.csum ? 4 : 0) - 16) / tagBytes(this.f));
    const per = x.perDescriptor ?? room;
    for (let i = 0; i < data.length; i += per) {
      const chunk = data.slice(i, i + per);
      const logged = chunk.map((d) => {
        const b = Buffer.from(d.data);
        const esc = b.readUInt32BE(0) === JBD2_MAGIC;
        if (esc) b.writeUInt32BE(0, 0);
        return { b, esc };
      });
      const tags = chunk.map((d, j) => ({
        blocknr: d.blocknr,
        flags: (j > 0 ? JBD2_FLAG_SAME_UUID : 0) | (j === chunk.length - 1 ? JBD2_FLAG_LAST_TAG : 0) | (logged[j]!.esc ? JBD2_FLAG_ESCAPE : 0),
        checksum: this.csum ? dataBlockChecksum(this.seed, seq, logged[j]!.b) : 0,
        uuid: j === 0 ? UUID : undefined,
      }));
      const desc = encodeDescriptorBlock(seq, tags, this.f, this.bs, this.seed);
      crc = crc32_be(crc, desc);
      this.where.set(`desc${seq}`, this.put(desc));
      logged.forEach((l, j) => { crc = crc32_be(crc, l.b); this.where.set(`data${seq}:${chunk[j]!.blocknr}`, this.put(l.b)); });
    }
    if (x.revokes?.length) this.where.set(`revoke${seq}`, this.put(encodeRevokeBlock(seq, x.revokes, this.f, this.bs, this.seed)));
    if (x.commit !== false) {
      const compat = (this.f.compat & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0;
      this.where.set(`commit${seq}`, this.put(encodeCommitBlock({
        sequence: seq, commitSec: x.commitSec ?? BigInt(1000 + seq), commitNsec: 5,
        ...(compat ? { chksumType: JBD2_CRC32_CHKSUM, chksumSize: 4, chksum0: crc } : {}),
      }, this.bs, this.f, this.seed)));
      this.seq = seq + 1;
    }
    return seq;
  }
  superblock(): Buffer {
    const sb = {
      ...journalSuperblock.zero(), h_magic: JBD2_MAGIC, h_blocktype: JBD2_SUPERBLOCK_V2, s_blocksize: this.bs,
      s_maxlen: this.maxLen, s_first: this.first, s_sequence: this.startSeq, s_start: this.start,
      s_feature_compat: this.f.compat, s_feature_incompat: this.f.incompat, s_uuid: UUID, s_nr_users: 1,
      s_checksum_type: this.csum ? JBD2_CRC32C_CHKSUM : 0,
    };
    const buf = journalSuperblock.encode(sb, Buffer.alloc(Math.max(1024, this.bs)));
    if (this.csum) buf.writeUInt32BE(superblockChecksum(buf), 0xfc);
    return buf;
  }
  reader(): JournalReader {
    const sb = this.superblock();
    for (let i = 0; i * this.bs < 1024; i++) sb.copy(this.blocks[i]!, 0, i * this.bs, (i + 1) * this.bs);
    let reads = 0;
    return {
      blockSize: this.bs, maxLen: this.maxLen,
      readLogBlock: async (n) => {
        if (++reads > 100000) throw new Error('runaway reads');
        if (n < 0 || n >= this.maxLen) throw new Error(`read outside the journal: ${n}`);
        return Buffer.from(this.blocks[n]!);
      },
    };
  }
}

export function fill(tag: string, bs: number): Buffer {
  const b = Buffer.alloc(bs);
  for (let i = 0; i < bs; i += tag.length) b.write(tag, i);
  return b;
}

