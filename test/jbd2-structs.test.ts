import t from 'tap';
import {
  JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FLAG_LAST_TAG,
  JBD2_FLAG_SAME_UUID, JBD2_MAGIC, JBD2_SUPERBLOCK_V2, commitHeader, crc32_be, decodeCommitBlock,
  decodeDescriptorTags, decodeJournalSuperblock, decodeRevokeRecords, encodeCommitBlock, encodeDescriptorBlock,
  encodeJournalSuperblock, encodeRevokeBlock, journalBlockTag3, journalBlockTag32, journalBlockTag64,
  journalBlockTail, journalHeader, journalSuperblock, journalSuperblockV1, revokeHeader, tagBytes,
  type JournalFeatures, Jbd2TagError,
} from '../src/libocfs2/jbd2';
import { crc32ieee } from '../src/libocfs2/crc32';

const feat = (incompat: number, compat = 0): JournalFeatures => ({ compat, incompat, roCompat: 0 });

t.test('sizes and offsets (jbd2.h)', async (t) => {
  t.equal(journalHeader.size, 12);
  t.equal(journalSuperblockV1.size, 0x24);
  t.equal(journalSuperblock.size, 1024);
  t.equal(journalSuperblock.offsetOf('s_uuid'), 0x30);
  t.equal(journalSuperblock.offsetOf('s_nr_users'), 0x40);
  t.equal(journalSuperblock.offsetOf('s_checksum_type'), 0x50);
  t.equal(journalSuperblock.offsetOf('s_num_fc_blks'), 0x54);
  t.equal(journalSuperblock.offsetOf('s_checksum'), 0xfc);
  t.equal(journalSuperblock.offsetOf('s_users'), 0x100);
  t.equal(journalBlockTag32.size, 8);
  t.equal(journalBlockTag64.size, 12);
  t.equal(journalBlockTag3.size, 16);
  t.equal(journalBlockTail.size, 4);
  t.equal(commitHeader.size, 0x3c);
  t.equal(commitHeader.offsetOf('h_commit_sec'), 0x30);
  t.equal(commitHeader.offsetOf('h_commit_nsec'), 0x38);
  t.equal(revokeHeader.size, 16);
  // journal_tag_bytes()
  t.equal(tagBytes(feat(0)), 8);
  t.equal(tagBytes(feat(JBD2_FEATURE_INCOMPAT_64BIT)), 12);
  t.equal(tagBytes(feat(JBD2_FEATURE_INCOMPAT_CSUM_V2)), 10);
  t.equal(tagBytes(feat(JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_64BIT)), 14);
  t.equal(tagBytes(feat(JBD2_FEATURE_INCOMPAT_CSUM_V3)), 16);
});

t.test('superblock round trip, big-endian on disk', async (t) => {
  const sb = {
    ...journalSuperblock.zero(), h_magic: JBD2_MAGIC, h_blocktype: JBD2_SUPERBLOCK_V2, s_blocksize: 4096,
    s_maxlen: 4096, s_first: 1, s_sequence: 0x01020304, s_start: 7, s_errno: -5, s_feature_incompat: 3,
    s_uuid: Buffer.from('00112233445566778899aabbccddeeff', 'hex'), s_nr_users: 1, s_checksum_type: 4, s_checksum: 0xdeadbeef,
  };
  const buf = encodeJournalSuperblock(sb);
  t.equal(buf.length, 1024);
  t.equal(buf.readUInt32BE(0), JBD2_MAGIC);
  t.equal(buf.readUInt32BE(0x18), 0x01020304);
  t.equal(buf.readInt32BE(0x20), -5);
  t.equal(buf.readUInt8(0x50), 4);
  t.equal(buf.readUInt32BE(0xfc), 0xdeadbeef);
  t.same(decodeJournalSuperblock(buf), sb);
  // A v1 superblock decodes with zero features.
  const v1 = journalSuperblockV1.encode({ h_magic: JBD2_MAGIC, h_blocktype: 3, h_sequence: 0, s_blocksize: 512, s_maxlen: 100, s_first: 2, s_sequence: 9, s_start: 0, s_errno: 0 });
  const d = decodeJournalSuperblock(v1);
  t.equal(d.s_first, 2);
  t.equal(d.s_feature_incompat, 0);
});

t.test('descriptor tags in every variant round trip', async (t) => {
  const uuid = Buffer.from('a1a2a3a4a5a6a7a8a9aaabacadaeafb0', 'hex');
  const variants = [0, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2,
    JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V3,
    JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_64BIT];
  for (const inc of variants) {
    const f = feat(inc);
    const big = (inc & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
    const csum = inc & JBD2_FEATURE_INCOMPAT_CSUM_V3 ? 0x89abcdef : inc & JBD2_FEATURE_INCOMPAT_CSUM_V2 ? 0xbeef : 0;
    const tags = [
      { blocknr: 17, flags: 0, checksum: csum, uuid },
      { blocknr: big ? 2 ** 40 + 3 : 0xfffffffe, flags: JBD2_FLAG_SAME_UUID | 1, checksum: csum },
      { blocknr: 5, flags: JBD2_FLAG_SAME_UUID | JBD2_FLAG_LAST_TAG, checksum: csum },
    ];
    const blk = encodeDescriptorBlock(42, tags, f, 1024);
    t.equal(blk.readUInt32BE(0), JBD2_MAGIC);
    t.equal(blk.readUInt32BE(4), 1);
    t.equal(blk.readUInt32BE(8), 42);
    const got = decodeDescriptorTags(blk, f);
    t.equal(got.length, 3, `variant 0x${inc.toString(16)}`);
    t.same(got.map((g) => [g.blocknr, g.flags, g.checksum]), tags.map((x) => [x.blocknr, x.flags, x.checksum]));
    t.same(got[0]!.uuid, uuid, 'uuid after the first tag');
    t.equal(got[1]!.offset, 12 + tagBytes(f) + 16, 'second tag after the uuid');
    // Tag flags sit in the be16 at tag offset 6 in every layout.
    t.equal(blk.readUInt16BE(got[1]!.offset + 6), JBD2_FLAG_SAME_UUID | 1);
  }
  // The classic ocfs2-tools 32-bit layout (t_flags be32) reads identically.
  const classic = Buffer.alloc(512);
  journalHeader.encode({ h_magic: JBD2_MAGIC, h_blocktype: 1, h_sequence: 1 }, classic);
  classic.writeUInt32BE(1234, 12); classic.writeUInt32BE(JBD2_FLAG_SAME_UUID | JBD2_FLAG_LAST_TAG, 16);
  t.same(decodeDescriptorTags(classic, feat(0)).map((g) => [g.blocknr, g.flags]), [[1234, 10]]);
});

t.test('descriptor walk stops at the end of the block; encoder refuses overflow', async (t) => {
  const f = feat(0);
  // No LAST_TAG anywhere: count every whole tag that fits ((64-12)/8 = 6 with SAME_UUID).
  const blk = Buffer.alloc(64);
  journalHeader.encode({ h_magic: JBD2_MAGIC, h_blocktype: 1, h_sequence: 1 }, blk);
  for (let off = 12; off + 8 <= 64; off += 8) { blk.writeUInt32BE(off, off); blk.writeUInt32BE(JBD2_FLAG_SAME_UUID, off + 4); }
  t.equal(decodeDescriptorTags(blk, f).length, 6);
  // A tag without SAME_UUID whose uuid runs past the block: it counts, the walk ends.
  blk.writeUInt32BE(0, 12 + 8 * 5 + 4);
  const tags = decodeDescriptorTags(blk, f);
  t.equal(tags.length, 6);
  t.equal(tags[5]!.uuid, undefined);
  t.throws(() => encodeDescriptorBlock(1, Array.from({ length: 7 }, (_, i) => ({ blocknr: i, flags: JBD2_FLAG_SAME_UUID })), f, 64), Jbd2TagError);
  t.throws(() => encodeDescriptorBlock(1, [{ blocknr: 2 ** 33, flags: 0 }], f, 64), Jbd2TagError);
});

t.test('commit and revoke blocks round trip', async (t) => {
  const c = encodeCommitBlock({ sequence: 9, commitSec: 0x1234567890n, commitNsec: 999999999, chksumType: 1, chksumSize: 4, chksum0: 0xcafef00d }, 512);
  t.equal(c.readUInt32BE(4), 2);
  t.equal(c.readUInt8(0x0c), 1);
  t.equal(c.readUInt32BE(0x10), 0xcafef00d);
  t.equal(c.readBigUInt64BE(0x30), 0x1234567890n);
  const d = decodeCommitBlock(c);
  t.equal(d.h_sequence, 9);
  t.equal(d.chksum0, 0xcafef00d);
  t.equal(d.h_commit_nsec, 999999999);
  t.same(commitHeader.decode(commitHeader.encode(commitHeader.decode(c))), commitHeader.decode(c));

  for (const inc of [0, JBD2_FEATURE_INCOMPAT_64BIT]) {
    const f = feat(inc);
    const recs = inc ? [1, 2 ** 40, 77] : [1, 0xffffffff, 77];
    const r = encodeRevokeBlock(3, recs, f, 512);
    t.equal(r.readUInt32BE(12), 16 + recs.length * (inc ? 8 : 4), 'r_count counts the header');
    t.same(decodeRevokeRecords(r, f), recs);
    t.same(revokeHeader.decode(revokeHeader.encode(revokeHeader.decode(r))), revokeHeader.decode(r));
  }
  const bad = encodeRevokeBlock(3, [1], feat(0), 512);
  bad.writeUInt32BE(513, 12);
  t.equal(decodeRevokeRecords(bad, feat(0)), null, 'r_count beyond the block');
  bad.writeUInt32BE(8, 12);
  t.same(decodeRevokeRecords(bad, feat(0)), [], 'r_count below the header: no records');
  t.throws(() => encodeRevokeBlock(1, Array.from({ length: 200 }, (_, i) => i), feat(0), 512), Jbd2TagError);
});

t.test('crc32_be matches the CRC-32/MPEG-2 check value', async (t) => {
  // CRC-32/MPEG-2 = crc32_be with seed ~0 and no final xor: check value 0x0376E6E7.
  t.equal(crc32_be(0xffffffff, Buffer.from('123456789')), 0x0376e6e7);
  t.not(crc32_be(0xffffffff, Buffer.from('123456789')), crc32ieee(Buffer.from('123456789')));
});
