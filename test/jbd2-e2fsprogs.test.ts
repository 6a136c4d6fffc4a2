/**
 * An independent writer and replayer for checksummed journals: OCFS2 never
 * enables CSUM_V3, but e2fsprogs' debugfs can write JBD2 transactions
 * (journal_open -c = CSUM_V3 + 64BIT + REVOKE) into an ext4 image, and
 * e2fsck replays them.  Our recovery must read that log and produce the same
 * blocks e2fsck writes.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_REVOKE,
  JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FLAG_ESCAPE, JBD2_MAGIC, featuresOf,
  journalReaderFromMapping, recoverJournal, walkTransactions,
} from '../src/libocfs2/jbd2';
import { Ocfs2CorruptError } from '../src/libocfs2/errors';
import { JournalBuilder, fill } from './lib/jbd2-builder';

// ocfs2-tools and e2fsprogs live in /usr/sbin, which a non-root PATH may lack.
process.env.PATH = [process.env.PATH, '/usr/sbin', '/sbin'].filter(Boolean).join(path.delimiter);

const BS = 4096;

function readBlock(img: string, b: number): Buffer {
  const fd = fs.openSync(img, 'r');
  try {
    const buf = Buffer.alloc(BS);
    fs.readSync(fd, buf, 0, BS, b * BS);
    return buf;
  } finally { fs.closeSync(fd); }
}

t.test('CSUM_V3 journal written by e2fsprogs debugfs, replayed like e2fsck', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jbd2-e2fs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'ext4.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 16 << 20);
  execFileSync('timeout', ['60', 'mkfs.ext4', '-F', '-q', '-b', String(BS), '-O', 'metadata_csum', img]);

  const rnd = (n: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 131 + n + (i >> 7)) & 0xff; return b; };
  const d1 = rnd(2 * BS); // T1: blocks 3000, 3001
  const d2 = rnd(BS); d2.writeUInt32BE(JBD2_MAGIC, 0); // T2: block 3002, must be escaped in the log
  const d4 = Buffer.alloc(BS, 0x5a); // T4: block 3000 again
  for (const [n, b] of [['d1', d1], ['d2', d2], ['d4', d4]] as const) fs.writeFileSync(path.join(dir, n), b);
  const cmds = [
    'jo -c',
    `jw -b 3000,3001 ${path.join(dir, 'd1')}`,
    `jw -b 3002 ${path.join(dir, 'd2')}`,
    'jw -r 3001', // T3 revokes 3001: T1's copy must not be replayed
    `jw -b 3000 ${path.join(dir, 'd4')}`,
    'jc',
  ].join('\n');
  const dbg = spawnSync('timeout', ['60', 'debugfs', '-w', '-f', '-', img], { input: cmds, encoding: 'utf8' });
  t.equal(dbg.status, 0, 'debugfs wrote the journal');
  t.match(dbg.stdout + dbg.stderr, /csum v3/);

  // The journal inode (8) and its extents: "(0-9):9-18, (10-24):20-34, ...".
  const stat = execFileSync('timeout', ['30', 'debugfs', '-R', 'stat <8>', img], { encoding: 'utf8' });
  const size = Number(/Size: (\d+)/.exec(stat)![1]);
  const ranges = [...stat.matchAll(/\((\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?/g)].map((m) => ({ lo: Number(m[1]), hi: Number(m[2] ?? m[1]), p: Number(m[3]) }));
  t.ok(ranges.length > 0, 'journal extents parsed');
  const fd = fs.openSync(img, 'r+');
  t.teardown(() => fs.closeSync(fd));
  const blocks = new Map<number, Buffer>();
  const reader = journalReaderFromMapping({
    blockSize: BS, maxLen: size / BS,
    mapLogical: (n) => { const r = ranges.find((x) => n >= x.lo && n <= x.hi); return r ? r.p + (n - r.lo) : -1; },
    readFsBlock: async (b) => {
      const buf = blocks.get(b) ?? Buffer.alloc(BS);
      if (!blocks.has(b)) fs.readSync(fd, buf, 0, BS, b * BS);
      return Buffer.from(buf);
    },
  });

  const res = await recoverJournal(reader);
  const f = featuresOf(res.superblock);
  t.ok(f.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3, 'CSUM_V3 journal');
  t.ok(f.incompat & JBD2_FEATURE_INCOMPAT_64BIT, '64-bit tags');
  t.ok(res.needed);
  t.equal(res.transactions, 4);
  t.same([...res.blocks.keys()].sort((a, b) => a - b), [3000, 3002]);
  t.same(res.blocks.get(3000), d4, 'later transaction wins');
  t.same(res.blocks.get(3002), d2, 'escaped block restored');
  t.equal(res.revokeHits, 1);

  const walk = await walkTransactions(reader);
  const entries = walk.transactions.flatMap((x) => x.entries);
  t.ok(entries.every((e) => e.checksumOk === true), 'descriptor, revoke and commit checksums verify');
  const tags = entries.flatMap((e) => (e.kind === 'descriptor' ? e.tags : []));
  t.ok(tags.every((g) => g.dataChecksumOk === true), 'data block checksums verify');
  t.ok(tags.some((g) => g.blocknr === 3002 && (g.flags & JBD2_FLAG_ESCAPE)), 'e2fsprogs escaped block 3002');

  // e2fsck's replay of a copy gives the same blocks (3001 stays as it was).
  const copy = path.join(dir, 'copy.img');
  fs.copyFileSync(img, copy);
  const before3001 = readBlock(copy, 3001);
  const fsck = spawnSync('timeout', ['120', 'e2fsck', '-fy', copy], { encoding: 'utf8' });
  t.match(fsck.stdout + fsck.stderr, /recovering journal/);
  t.same(readBlock(copy, 3000), res.blocks.get(3000));
  t.same(readBlock(copy, 3002), res.blocks.get(3002));
  t.same(readBlock(copy, 3001), before3001, 'revoked block untouched by e2fsck');

  // Flip one bit in a logged data block: the data checksum catches it.
  const dataTag = tags.find((g) => g.blocknr === 3002)!;
  const phys = reader.physicalBlock!(dataTag.dataLogBlock);
  const blk = readBlock(img, phys);
  blk[1000] ^= 0x10;
  blocks.set(phys, blk);
  await t.rejects(recoverJournal(reader), Ocfs2CorruptError);
  const lenient = await recoverJournal(reader, { allowDataChecksumErrors: true });
  t.same(lenient.checksumErrors.map((e) => e.fsBlock), [3002]);
  t.notOk(lenient.blocks.has(3002));
});

/**
 * The checksum formats OCFS2 can meet (CSUM_V2, CSUM_V3, COMPAT_CHECKSUM)
 * written by our encoders (test/lib/jbd2-builder.ts) into an ext4 journal:
 * e2fsck (jbd2's recovery.c) replays them, and must write exactly the blocks
 * our recovery returns, also when a logged block is corrupt.
 */
for (const [name, compat, incompat] of [
  ['CSUM_V2', 0, JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_CSUM_V2],
  ['CSUM_V3', 0, JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_CSUM_V3],
  ['COMPAT_CHECKSUM', JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_REVOKE],
] as const) {
  for (const corrupt of [false, true]) {
    t.test(`${name} log of our encoders${corrupt ? ' with a corrupt data block' : ''}: e2fsck replays what we replay`, async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jbd2-e2fs-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const img = path.join(dir, 'ext4.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 16 << 20);
      // no metadata_csum: the fs feature would make e2fsck insist on a v3 journal
      execFileSync('timeout', ['60', 'mkfs.ext4', '-F', '-q', '-b', String(BS), '-O', '^metadata_csum', '-J', 'size=4', img]);
      const stat = execFileSync('timeout', ['30', 'debugfs', '-R', 'stat <8>', img], { encoding: 'utf8' });
      const maxLen = Number(/Size: (\d+)/.exec(stat)![1]) / BS;
      const ranges = [...stat.matchAll(/\((\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?/g)].map((m) => ({ lo: Number(m[1]), hi: Number(m[2] ?? m[1]), p: Number(m[3]) }));
      t.ok(ranges.length > 0 && maxLen >= 1024, `journal of ${maxLen} blocks mapped`);
      const inJournal = (b: number): boolean => ranges.some((r) => b >= r.p && b <= r.p + (r.hi - r.lo));
      const targets = [3500, 3501, 3502, 3503].filter((b) => !inJournal(b));
      t.equal(targets.length, 4, 'target blocks outside the journal');
      const [a, b, c, d] = targets as [number, number, number, number];

      const j = new JournalBuilder(BS, maxLen, incompat, compat);
      const escaped = fill('esc', BS); escaped.writeUInt32BE(JBD2_MAGIC, 0);
      j.txn({ blocks: [{ blocknr: a, data: fill('t1a', BS) }, { blocknr: b, data: fill('t1b', BS) }] });
      j.txn({ blocks: [{ blocknr: a, data: fill('t2a', BS) }, { blocknr: c, data: escaped }], revokes: [b] });
      j.txn({ blocks: [{ blocknr: d, data: fill('t3d', BS) }] });
      if (corrupt) j.blocks[j.where.get(`data2:${c}`)!]![100] ^= 1;
      const reader = j.reader();
      const fd = fs.openSync(img, 'r+');
      for (let n = 0; n < maxLen; n++) {
        const r = ranges.find((x) => n >= x.lo && n <= x.hi)!;
        fs.writeSync(fd, await reader.readLogBlock(n), 0, BS, (r.p + n - r.lo) * BS);
      }
      fs.closeSync(fd);
      const before = new Map(targets.map((x) => [x, readBlock(img, x)]));
      const fr = spawnSync('timeout', ['30', 'debugfs', '-w', '-R', 'feature needs_recovery', img], { encoding: 'utf8' });
      t.equal(fr.status, 0, 'needs_recovery set');

      // Ours (lenient on a corrupt data block, as e2fsck is: it skips the block and goes on).
      const ours = await recoverJournal(j.reader(), { allowDataChecksumErrors: true });
      const fsck = spawnSync('timeout', ['120', 'e2fsck', '-fy', img], { encoding: 'utf8' });
      const out = fsck.stdout + fsck.stderr;
      t.match(out, /recovering journal/, 'e2fsck replayed the journal');
      t.notMatch(out, /journal superblock (is corrupt|has an unknown)|unsupported feature/i, 'e2fsck accepted the journal superblock as we wrote it');
      // a bad block checksum is reported where we report one (v2/v3 per-block checksums)
      if (corrupt && !compat) t.match(out, /Journal checksum error/, 'e2fsck found the corrupt block too');
      else t.notMatch(out, /Journal checksum error/, 'e2fsck verified every checksum we wrote');
      for (const x of targets) {
        const want = ours.blocks.get(x) ?? before.get(x)!;
        t.ok(readBlock(img, x).equals(want), `block ${x}: e2fsck's replay equals ours (${ours.blocks.has(x) ? 'replayed' : 'untouched'})`);
      }
      t.equal(ours.transactions, compat && corrupt ? 1 : 3, 'our transaction count');
      if (corrupt && !compat) t.same(ours.checksumErrors.map((e) => e.fsBlock), [c], 'the corrupt block is the one skipped');
    });
  }
}
