/**
 * Quota structures (ocfs2_fs.h, quota_tree.h): sizes, field round trips, and
 * the tree / local-file geometry the kernel derives from the block size
 * (quota_tree.c get_index / qtree_depth, quota_local.c ol_*), with values
 * worked out by hand from those formulas.
 */
import t from 'tap';
import {
  DiskDqHeader, DiskDqdbHeader, GlobalDiskDqblk, GlobalDiskDqinfo, LocalDiskChunk, LocalDiskDqblk, LocalDiskDqinfo,
  localChunkBlock, localDqblkLocation, localQuotaGeometry, qtreeGeometry, qtreeIndex, quotaCheckOffset,
} from '../src/libocfs2/structs/quota';
import { chargeDquot, setDquotLimits, type Dquot } from '../src/libocfs2/quota';

t.test('sizes', async (t) => {
  t.same([DiskDqHeader.size, GlobalDiskDqinfo.size, GlobalDiskDqblk.size, DiskDqdbHeader.size, LocalDiskDqinfo.size, LocalDiskChunk.size, LocalDiskDqblk.size],
    [8, 24, 88, 16, 12, 4, 24]);
  t.equal(quotaCheckOffset(4096), 4088);
});

t.test('round trips', async (t) => {
  const q = {
    dqb_id: 1001, dqb_use_count: 2, dqb_ihardlimit: 10n, dqb_isoftlimit: 5n, dqb_curinodes: 7n, dqb_bhardlimit: 1n << 40n,
    dqb_bsoftlimit: 1n << 20n, dqb_curspace: 123456789n, dqb_btime: 1700000000n, dqb_itime: 1700000001n, dqb_pad1: 0n, dqb_pad2: 0n,
  };
  const b = Buffer.alloc(100);
  GlobalDiskDqblk.encode(q, b, 4);
  t.same(GlobalDiskDqblk.decode(b, 4), q);
  t.equal(b.readUInt32LE(4), 1001, 'dqb_id first, little-endian');
  t.equal(b.readBigUInt64LE(4 + 0x30), 123456789n, 'dqb_curspace at 0x30');
  const l = { dqb_id: 7n, dqb_spacemod: BigInt.asUintN(64, -4096n), dqb_inodemod: 1n };
  LocalDiskDqblk.encode(l, b, 0);
  t.same(LocalDiskDqblk.decode(b, 0), l);
  t.equal(BigInt.asIntN(64, LocalDiskDqblk.decode(b, 0).dqb_spacemod), -4096n, 'space changes are signed');
  const i = { dqi_bgrace: 1, dqi_igrace: 2, dqi_syncms: 10000, dqi_blocks: 6, dqi_free_blk: 0, dqi_free_entry: 5 };
  GlobalDiskDqinfo.encode(i, b, 8);
  t.same(GlobalDiskDqinfo.decode(b, 8), i);
});

t.test('tree geometry', async (t) => {
  // 4 KiB: (4096-8)/4 = 1022 refs; 1022^3 < 2^32 <= 1022^4; (4088-16)/88 = 46 entries per leaf.
  t.same(qtreeGeometry(4096), { usable: 4088, epb: 1022, depth: 4, entriesPerLeaf: 46 });
  // 512 B: 126 refs; 126^4 < 2^32 <= 126^5; (504-16)/88 = 5.
  t.same(qtreeGeometry(512), { usable: 504, epb: 126, depth: 5, entriesPerLeaf: 5 });
  const g = qtreeGeometry(4096);
  t.same([0, 1, 2, 3].map((d) => qtreeIndex(g, 1001, d)), [0, 0, 0, 1001]);
  const id = 3 * 1022 ** 3 + 7 * 1022 ** 2 + 9 * 1022 + 11;
  t.same([0, 1, 2, 3].map((d) => qtreeIndex(g, id, d)), [3, 7, 9, 11]);
});

t.test('local file geometry', async (t) => {
  // 4 KiB: 4088/24 = 170 entries a block; (4096-4-8)*8/170 = 192 blocks a chunk; 32640 entries.
  const g = localQuotaGeometry(4096);
  t.same(g, { entriesPerBlock: 170, chunkBlocks: 192, chunkEntries: 32640 });
  t.same([localChunkBlock(g, 0), localChunkBlock(g, 1)], [1, 194]);
  t.same(localDqblkLocation(g, 0, 0), { block: 2, offset: 0 });
  t.same(localDqblkLocation(g, 1, 171), { block: 196, offset: 24 });
  t.same(localQuotaGeometry(512), { entriesPerBlock: 21, chunkBlocks: 190, chunkEntries: 3990 });
});

t.test('limits and grace (check_bdq / check_idq)', async (t) => {
  const q = (): Dquot => ({ id: 1, useCount: 0, bhardlimit: 0n, bsoftlimit: 0n, curspace: 0n, btime: 0n, ihardlimit: 0n, isoftlimit: 0n, curinodes: 0n, itime: 0n });
  const grace = { bgrace: 100, igrace: 50 };
  const a = q(); a.bhardlimit = 1000n;
  chargeDquot(a, { space: 1000n, inodes: 0n }, grace, 10n);
  t.equal(a.curspace, 1000n, 'up to the hard limit');
  t.throws(() => chargeDquot(a, { space: 1n, inodes: 0n }, grace, 10n), { code: 'EDQUOT' }, 'one byte over the hard limit');
  t.equal(a.curspace, 1000n, 'a refused charge changes nothing');
  chargeDquot(a, { space: -2000n, inodes: 0n }, grace, 10n);
  t.equal(a.curspace, 0n, 'frees never go below zero');
  const s = q(); s.isoftlimit = 2n;
  chargeDquot(s, { space: 0n, inodes: 3n }, grace, 10n);
  t.equal(s.itime, 60n, 'over the soft limit: deadline now + grace');
  chargeDquot(s, { space: 0n, inodes: 1n }, grace, 59n);
  t.throws(() => chargeDquot(s, { space: 0n, inodes: 1n }, grace, 60n), { code: 'EDQUOT' }, 'after the deadline');
  chargeDquot(s, { space: 0n, inodes: -2n }, grace, 61n);
  t.equal(s.itime, 0n, 'back under the soft limit: no deadline');
  const l = q(); l.curspace = 500n;
  setDquotLimits(l, { bsoftlimit: 100n }, grace, 7n);
  t.equal(l.btime, 107n, 'a new soft limit under the usage starts the grace period');
  setDquotLimits(l, { bsoftlimit: 0n }, grace, 8n);
  t.equal(l.btime, 0n, 'no soft limit, no deadline');
});
