/**
 * Recovery on journals built in memory with our encoders: revokes across
 * transactions, escaping, 64-bit tags, checksums (v2, v3, COMPAT_CHECKSUM),
 * incomplete and corrupt logs, wrap-around.
 */
import t from 'tap';
import {
  JBD2_CRC32_CHKSUM, JBD2_CRC32C_CHKSUM, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT,
  JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG,
  JBD2_FLAG_SAME_UUID, JBD2_MAGIC, JBD2_SUPERBLOCK_V2, crc32_be, csumSeed, dataBlockChecksum,
  encodeCommitBlock, encodeDescriptorBlock, encodeRevokeBlock, featuresOf, journalSuperblock, loadJournal,
  recoverJournal, superblockAfterReplay, mapFromExtents, journalReaderFromMapping, applyRecovery, superblockChecksum, tagBytes, walkTransactions,
  type JournalFeatures, type JournalReader,
} from '../src/libocfs2/jbd2';
import { Ocfs2CorruptError, Ocfs2UnsupportedError } from '../src/libocfs2/errors';
import { JournalBuilder, UUID, fill } from './lib/jbd2-builder';


const REVOKE = JBD2_FEATURE_INCOMPAT_REVOKE;

t.test('plain journal: last transaction wins, block counts', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE);
  j.txn({ blocks: [{ blocknr: 100, data: fill('a1', 1024) }, { blocknr: 101, data: fill('b1', 1024) }] });
  j.txn({ blocks: [{ blocknr: 100, data: fill('a2', 1024) }] });
  const res = await recoverJournal(j.reader());
  t.ok(res.needed);
  t.equal(res.startSeq, 1);
  t.equal(res.endSeq, 3);
  t.equal(res.transactions, 2);
  t.equal(res.replayed, 3);
  t.same(res.blocks.get(100), fill('a2', 1024));
  t.same(res.blocks.get(101), fill('b1', 1024));
  t.equal(res.headBlock, j.next);
});

t.test('revoke across transactions, with sequence numbers', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE, 0, { sequence: 0xfffffffe }); // also crosses the 2^32 wrap
  const s1 = j.txn({ blocks: [{ blocknr: 100, data: fill('a1', 1024) }, { blocknr: 101, data: fill('b1', 1024) }, { blocknr: 102, data: fill('c1', 1024) }] });
  j.txn({ revokes: [100, 101] }); // revokes blocks written by the earlier transaction
  j.txn({ blocks: [{ blocknr: 100, data: fill('a3', 1024) }] }); // newer than the revoke: replayed
  j.txn({ blocks: [{ blocknr: 102, data: fill('c4', 1024) }], revokes: [102] }); // revoked in its own transaction
  j.txn({ revokes: [100], commit: false }); // uncommitted revoke: ignored
  const res = await recoverJournal(j.reader());
  t.equal(s1, 0xfffffffe);
  t.equal(res.transactions, 4);
  t.equal(res.endSeq, 2);
  t.same(res.blocks.get(100), fill('a3', 1024), 'rewritten after the revoke');
  t.notOk(res.blocks.has(101), 'revoked');
  t.notOk(res.blocks.has(102), 'revoked by the transaction that logged it');
  t.equal(res.revokeHits, 4);
  t.equal(res.revokeRecords, 4, 'records of committed transactions counted in the scan');
  const w = await walkTransactions(j.reader());
  t.same(w.transactions.map((x) => x.committed), [true, true, true, true, false]);
  t.same(w.transactions[1]!.entries.map((e) => e.kind), ['revoke', 'commit']);
  const rv = w.transactions[1]!.entries[0]!;
  t.same(rv.kind === 'revoke' ? rv.records : null, [100, 101]);
  t.equal(w.end.reason, 'bad magic');
});

t.test('escaped blocks are restored', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE);
  const magicBlock = fill('zz', 1024);
  magicBlock.writeUInt32BE(JBD2_MAGIC, 0);
  j.txn({ blocks: [{ blocknr: 7, data: magicBlock }, { blocknr: 8, data: fill('x', 1024) }] });
  const logged = j.blocks[j.where.get('data1:7')!]!;
  t.equal(logged.readUInt32BE(0), 0, 'the log holds the escaped copy');
  const res = await recoverJournal(j.reader());
  t.same(res.blocks.get(7), magicBlock);
  t.same(res.blocks.get(8), fill('x', 1024));
});

t.test('64-bit tags and revoke records', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE | JBD2_FEATURE_INCOMPAT_64BIT);
  const hi = 2 ** 36 + 12345;
  j.txn({ blocks: [{ blocknr: hi, data: fill('h1', 1024) }, { blocknr: hi + 2 ** 32, data: fill('h2', 1024) }, { blocknr: 5, data: fill('lo', 1024) }] });
  j.txn({ revokes: [hi + 2 ** 32, 5 + 2 ** 32] }); // the second must not hit block 5
  const res = await recoverJournal(j.reader());
  t.same([...res.blocks.keys()].sort((a, b) => a - b), [5, hi]);
  t.same(res.blocks.get(hi), fill('h1', 1024));
  await t.rejects(recoverJournal(j.reader(), { fsBlockCount: 2 ** 36 }), Ocfs2CorruptError, 'tag beyond the filesystem');
});

t.test('multiple descriptors per transaction and wrap-around of the log', async (t) => {
  const j = new JournalBuilder(512, 20, REVOKE, 0, { start: 14 }); // s_first = 2 for 512-byte blocks
  t.equal(j.first, 2);
  j.txn({ perDescriptor: 2, blocks: [1, 2, 3, 4, 5].map((b) => ({ blocknr: b, data: fill(`w${b}`, 512) })) });
  j.txn({ blocks: [{ blocknr: 3, data: fill('again', 512) }] });
  t.ok(j.next < 14, 'the log wrapped');
  const res = await recoverJournal(j.reader());
  t.equal(res.transactions, 2);
  t.equal(res.blocks.size, 5);
  t.same(res.blocks.get(3), fill('again', 512));
  t.same(res.blocks.get(5), fill('w5', 512));
});

for (const [name, inc] of [['v3', JBD2_FEATURE_INCOMPAT_CSUM_V3], ['v2', JBD2_FEATURE_INCOMPAT_CSUM_V2], ['v3+64bit', JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_64BIT]] as const) {
  t.test(`checksums ${name}`, async (t) => {
    const mk = (): JournalBuilder => {
      const j = new JournalBuilder(1024, 64, REVOKE | inc);
      j.txn({ blocks: [{ blocknr: 10, data: fill('t1', 1024) }, { blocknr: 11, data: fill('u1', 1024) }] });
      j.txn({ blocks: [{ blocknr: 10, data: fill('t2', 1024) }], revokes: [11] });
      j.txn({ blocks: [{ blocknr: 12, data: fill('t3', 1024) }] });
      return j;
    };
    const good = await recoverJournal(mk().reader());
    t.equal(good.transactions, 3);
    t.same(good.blocks.get(10), fill('t2', 1024));
    t.notOk(good.blocks.has(11));

    // A bad data block: replay fails (jbd2 fails the mount), or is skipped on request.
    let j = mk();
    j.blocks[j.where.get('data3:12')!]![100] ^= 1;
    await t.rejects(recoverJournal(j.reader()), Ocfs2CorruptError);
    const lenient = await recoverJournal(j.reader(), { allowDataChecksumErrors: true });
    t.notOk(lenient.blocks.has(12));
    t.same(lenient.checksumErrors.map((e) => e.fsBlock), [12]);

    // A bad commit block in the last transaction: the log ends before it.
    j = mk();
    j.blocks[j.where.get('commit3')!]![0x3a] ^= 1; // in the header: a torn tail would pass the partial check
    let res = await recoverJournal(j.reader());
    t.equal(res.transactions, 2);
    t.notOk(res.blocks.has(12));

    // A bad descriptor checksum followed by a commit with a later time: corruption.
    j = mk();
    j.blocks[j.where.get('desc2')!]![700] ^= 1;
    await t.rejects(recoverJournal(j.reader()), Ocfs2CorruptError);
    // ... or with an earlier time (a stale block of an older log): the log ends there.
    const stale = new JournalBuilder(1024, 64, REVOKE | inc);
    stale.txn({ blocks: [{ blocknr: 10, data: fill('t1', 1024) }], commitSec: 5000n });
    stale.txn({ blocks: [{ blocknr: 10, data: fill('t2', 1024) }], commitSec: 10n });
    stale.blocks[stale.where.get('desc2')!]![700] ^= 1;
    res = await recoverJournal(stale.reader());
    t.equal(res.transactions, 1);
    t.same(res.blocks.get(10), fill('t1', 1024));

    // A corrupt revoke block is caught like a descriptor.
    j = mk();
    j.blocks[j.where.get('revoke2')!]![900] ^= 1;
    await t.rejects(recoverJournal(j.reader()), Ocfs2CorruptError);

    // The superblock checksum is enforced and maintained.
    j = mk();
    const r = j.reader();
    const raw = Buffer.from((await r.readLogBlock(0)));
    raw[0x40] ^= 1;
    const broken = { ...r, readLogBlock: async (n: number) => (n === 0 ? raw : r.readLogBlock(n)) };
    await t.rejects(loadJournal(broken), Ocfs2CorruptError);
    const after = superblockAfterReplay(await r.readLogBlock(0), good.endSeq);
    const g = await loadJournal({ ...r, readLogBlock: async (n: number) => (n === 0 ? after : r.readLogBlock(n)) });
    t.equal(g.sb.s_start, 0);
    t.equal(g.sb.s_sequence, good.endSeq + 1, "next transaction after the replayed ones");
    t.equal(featuresOf(g.sb).incompat, REVOKE | inc);

    const w = await walkTransactions(mk().reader());
    const all = w.transactions.flatMap((x) => x.entries);
    t.ok(all.every((e) => e.checksumOk === true));
    t.ok(all.every((e) => e.kind !== 'descriptor' || e.tags.every((g) => g.dataChecksumOk === true)));
  });
}

t.test('COMPAT_CHECKSUM (crc32_be transaction checksum)', async (t) => {
  const mk = (inc = REVOKE): JournalBuilder => {
    const j = new JournalBuilder(1024, 64, inc, JBD2_FEATURE_COMPAT_CHECKSUM);
    j.txn({ blocks: [{ blocknr: 20, data: fill('p', 1024) }] });
    j.txn({ blocks: [{ blocknr: 21, data: fill('q', 1024) }] });
    j.txn({ blocks: [{ blocknr: 22, data: fill('r', 1024) }] });
    return j;
  };
  t.equal((await recoverJournal(mk().reader())).transactions, 3);
  const j = mk();
  j.blocks[j.where.get('data2:21')!]![5] ^= 1;
  const res = await recoverJournal(j.reader());
  t.equal(res.transactions, 1, 'sync commit: the log ends at the failed transaction');
  t.notOk(res.blocks.has(21));
  // With ASYNC_COMMIT the scan goes on past it, but the end stays at the failed transaction.
  const a = mk(REVOKE | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT);
  a.blocks[a.where.get('data2:21')!]![5] ^= 1;
  t.equal((await recoverJournal(a.reader())).transactions, 1);
});

t.test('a truncated last transaction (no commit) is not replayed', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE);
  j.txn({ blocks: [{ blocknr: 30, data: fill('ok', 1024) }] });
  j.txn({ blocks: [{ blocknr: 30, data: fill('torn', 1024) }, { blocknr: 31, data: fill('torn', 1024) }], commit: false });
  const res = await recoverJournal(j.reader());
  t.equal(res.transactions, 1);
  t.equal(res.endSeq, 2);
  t.same(res.blocks.get(30), fill('ok', 1024));
  t.notOk(res.blocks.has(31));
  const w = await walkTransactions(j.reader());
  t.same(w.transactions.map((x) => x.committed), [true, false]);
});

t.test('garbage in the middle of the log ends it', async (t) => {
  const j = new JournalBuilder(1024, 64, REVOKE);
  j.txn({ blocks: [{ blocknr: 40, data: fill('a', 1024) }] });
  j.txn({ blocks: [{ blocknr: 41, data: fill('b', 1024) }] });
  j.txn({ blocks: [{ blocknr: 42, data: fill('c', 1024) }] });
  // Overwrite the commit of transaction 2 with garbage.
  j.blocks[j.where.get('commit2')!] = fill('garbage!', 1024);
  let res = await recoverJournal(j.reader());
  t.equal(res.transactions, 1);
  t.same([...res.blocks.keys()], [40]);
  // A block with the magic but an older sequence (a stale block) ends it too.
  const k = new JournalBuilder(1024, 64, REVOKE, 0, { sequence: 10 });
  k.txn({ blocks: [{ blocknr: 40, data: fill('a', 1024) }] });
  k.blocks[k.next] = encodeCommitBlock({ sequence: 3 }, 1024);
  res = await recoverJournal(k.reader());
  t.equal(res.transactions, 1);
  // An unknown block type ends it.
  const u = new JournalBuilder(1024, 64, REVOKE);
  u.txn({ blocks: [{ blocknr: 40, data: fill('a', 1024) }] });
  const odd = encodeCommitBlock({ sequence: 2 }, 1024);
  odd.writeUInt32BE(9, 4);
  u.blocks[u.next] = odd;
  res = await recoverJournal(u.reader());
  t.equal(res.transactions, 1);
  t.equal((await walkTransactions(u.reader())).end.reason, 'unknown block type');
  // A descriptor whose tags overrun the log block: tags stop at the block end.
  const d = new JournalBuilder(512, 64, REVOKE);
  const desc = encodeDescriptorBlock(1, [{ blocknr: 50, flags: JBD2_FLAG_SAME_UUID }], d.f, 512);
  for (let off = 12; off + 8 <= 512; off += 8) { desc.writeUInt32BE(50 + off, off); desc.writeUInt32BE(JBD2_FLAG_SAME_UUID, off + 4); }
  d.blocks[d.first] = desc; // 62 tags, no LAST_TAG; their data blocks are zeros; no commit follows
  res = await recoverJournal(d.reader());
  t.equal(res.transactions, 0);
  t.equal(res.blocks.size, 0);
});

t.test('hostile logs cannot loop or crash', async (t) => {
  // Every block a revoke block of the same transaction: the scan would circle forever.
  const j = new JournalBuilder(512, 16, REVOKE);
  for (let n = j.first; n < 16; n++) j.blocks[n] = encodeRevokeBlock(1, [n], j.f, 512);
  await t.rejects(recoverJournal(j.reader()), Ocfs2CorruptError);
  const w = await walkTransactions(j.reader());
  t.equal(w.end.reason, 'log wrapped');
  // Revoke with r_count beyond the block.
  const r = new JournalBuilder(512, 16, REVOKE);
  r.txn({ revokes: [1] });
  r.blocks[r.where.get('revoke1')!]!.writeUInt32BE(4096, 12);
  await t.rejects(recoverJournal(r.reader()), Ocfs2CorruptError);
  // A huge commit time does not overflow.
  const c = new JournalBuilder(512, 16, REVOKE);
  c.txn({ blocks: [{ blocknr: 3, data: fill('x', 512) }], commitSec: 0xffffffffffffffffn });
  t.equal((await recoverJournal(c.reader())).transactions, 1);
});

t.test('superblock checks', async (t) => {
  const base = new JournalBuilder(1024, 32, REVOKE);
  base.txn({ blocks: [{ blocknr: 3, data: fill('x', 1024) }] });
  const withSb = (edit: (b: Buffer) => void): JournalReader => {
    const r = base.reader();
    return { ...r, readLogBlock: async (n) => { const b = await r.readLogBlock(n); if (n === 0) edit(b); return b; } };
  };
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(0x12345678, 0))), Ocfs2CorruptError, 'magic');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(1, 4))), Ocfs2CorruptError, 'block type');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(4096, 0x0c))), Ocfs2CorruptError, 'block size');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(33, 0x10))), Ocfs2CorruptError, 'maxlen beyond the file');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(0, 0x14))), Ocfs2CorruptError, 's_first 0');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(32, 0x1c))), Ocfs2CorruptError, 's_start beyond the log');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(REVOKE | JBD2_FEATURE_INCOMPAT_FAST_COMMIT, 0x28))), Ocfs2UnsupportedError, 'fast commit');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(0x100, 0x28))), Ocfs2UnsupportedError, 'unknown incompat');
  await t.rejects(recoverJournal(withSb((b) => b.writeUInt32BE(JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3, 0x28))), Ocfs2CorruptError, 'v2+v3');
  // Clean: s_start 0 means nothing to do even with a log behind it.
  const clean = await recoverJournal(withSb((b) => b.writeUInt32BE(0, 0x1c)));
  t.equal(clean.needed, false);
  t.equal(clean.blocks.size, 0);
  t.equal((await recoverJournal(base.reader())).transactions, 1);
  // The superblock after replay: empty, next sequence, other bytes untouched.
  const raw = await base.reader().readLogBlock(0);
  const upd = superblockAfterReplay(raw, 7);
  t.equal(upd.readUInt32BE(0x1c), 0);
  t.equal(upd.readUInt32BE(0x18), 8);
  t.same(upd.subarray(0x20), raw.subarray(0x20));
});

t.test('OCFS2 adapter: extent mapping, unmapped blocks, applyRecovery', async (t) => {
  // 1 KiB blocks, 64 KiB clusters: 64 blocks a cluster; two extents.
  const map = mapFromExtents([{ cpos: 1, clusters: 1, blkno: 9000 }, { cpos: 0, clusters: 1, blkno: 128 }], 65536, 1024);
  t.equal(map(0), 128);
  t.equal(map(63), 191);
  t.equal(map(64), 9000);
  t.equal(map(127), 9063);
  t.equal(map(128), -1);
  const j = new JournalBuilder(512, 40, REVOKE);
  j.txn({ blocks: [{ blocknr: 77, data: fill('k', 512) }] });
  const inner = j.reader();
  const r = journalReaderFromMapping({
    blockSize: 512, maxLen: 48, // the file claims more blocks than are mapped
    mapLogical: (n) => (n < 40 ? 1000 + n : -1),
    readFsBlock: async (b) => inner.readLogBlock(b - 1000),
  });
  t.equal(r.physicalBlock!(3), 1003);
  await t.rejects(r.readLogBlock(45), Ocfs2CorruptError, 'unmapped');
  await t.rejects(r.readLogBlock(48), Ocfs2CorruptError, 'beyond the file');
  const res = await recoverJournal(r);
  t.equal(res.transactions, 1);
  const fsWrites = new Map<number, Buffer>();
  const logWrites = new Map<number, Buffer>();
  await applyRecovery(r, res, {
    writeFsBlock: async (b, d) => { fsWrites.set(b, d); },
    writeLogBlock: async (n, d) => { logWrites.set(n, Buffer.from(d)); },
  });
  t.same([...fsWrites.keys()], [77]);
  t.same([...logWrites.keys()], [0, 1], '1 KiB superblock spans two 512-byte blocks');
  t.equal(logWrites.get(0)!.readUInt32BE(0x1c), 0, 's_start cleared');
  t.equal(logWrites.get(0)!.readUInt32BE(0x18), res.endSeq + 1);
  const clean = await recoverJournal({ ...r, readLogBlock: async (n) => (n < 2 ? logWrites.get(n)! : r.readLogBlock(n)) });
  t.equal(clean.needed, false);
});
