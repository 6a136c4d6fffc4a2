/**
 * The per-structure validators of src/libocfs2/structs (issue 16), on
 * hand-made records: each check fails on the damage it names and passes on
 * the shapes the kernel writes (empty leaf record, holes, hashed trees).
 */
import t from 'tap';
import { extentRecordProblems, interiorRecordRange, emptyExtentList, type ExtentList } from '../src/libocfs2/structs/extent';
import { localAllocProblems } from '../src/libocfs2/structs/localalloc';
import { truncateLogRecordProblems } from '../src/libocfs2/structs/truncatelog';
import { symlinkMaxSize } from '../src/libocfs2/structs/dinode';
import { direntNameProblem } from '../src/libocfs2/structs/dir';

const leaf = (recs: Array<[number, number, number]>, depth = 0): ExtentList => ({
  ...emptyExtentList(16, depth), nextFreeRec: recs.length,
  recs: recs.map(([cpos, clusters, blkno]) => ({ cpos, clusters, blkno, flags: 0, reserved1: 0 })),
});
const b = { blockCount: 1000, clusterBlocks: 4 };
const codes = (l: ExtentList, o = {}): string[] => extentRecordProblems(l, { ...b, ...o }).map((p) => `${p.code}@${p.rec}:${p.field}`);

t.test('extent records', async (t) => {
  t.same(codes(leaf([[0, 0, 0], [0, 2, 100], [5, 1, 200]])), [], 'empty first record, a hole: fine');
  t.same(codes(leaf([[0, 2, 100], [1, 1, 200]])), ['EXTENT_OVERLAP@1:e_cpos'], 'overlap');
  t.same(codes(leaf([[4, 1, 100], [2, 1, 200]])), ['EXTENT_OVERLAP@1:e_cpos'], 'unsorted');
  t.same(codes(leaf([[0, 1, 998]])), ['EXTENT_CLUSTERS_OVERRUN@0:e_leaf_clusters'], 'run past the volume');
  t.same(codes(leaf([[0, 1, 1000]])), ['EXTENT_BLKNO_RANGE@0:e_blkno'], 'start outside the volume');
  t.same(codes(leaf([[0, 1, 101]])), ['EXTENT_BLKNO_UNALIGNED@0:e_blkno'], 'unaligned leaf');
  t.same(codes(leaf([[0, 1, 0]])), ['EXTENT_BLKNO_RANGE@0:e_blkno'], 'block 0');
  t.same(codes(leaf([[3, 1, 100]]), { range: { start: 4, end: 10 } }), ['EXTENT_OUT_OF_PARENT@0:e_cpos'], 'before the parent range');
  t.same(codes(leaf([[8, 4, 100]]), { range: { start: 4, end: 10 } }), ['EXTENT_OUT_OF_PARENT@0:e_leaf_clusters'], 'past the parent range');
  t.same(codes(leaf([[100, 4, 100], [101, 1, 200]]), { disjoint: false }), [], 'hashed tree: order only');
  t.same(codes(leaf([[100, 4, 100], [99, 1, 200]]), { disjoint: false }), ['EXTENT_OVERLAP@1:e_cpos'], 'hashed tree: unsorted');
  const interior = leaf([[0, 5, 101], [7, 3, 102]], 1);
  t.same(codes(interior), [], 'interior blocks need no alignment');
  t.same(interiorRecordRange(interior, 0), { start: 0, end: 7 }, 'child range up to the next record');
  t.equal(interiorRecordRange(interior, 1).end, Number.MAX_SAFE_INTEGER, 'last child open-ended');
});

t.test('local alloc, truncate log, symlink size, dirent names', async (t) => {
  const la = (off: number, size: number) => ({ la_bm_off: off, la_size: size, la_reserved1: 0, la_reserved2: 0n });
  t.same(localAllocProblems(la(0, 100), { i_used: 0, i_total: 0 }, 100, 500), [], 'empty window');
  t.same(localAllocProblems(la(5, 100), { i_used: 1, i_total: 0 }, 100, 500).map((p) => p.code), ['LALLOC_NZ_USED', 'LALLOC_NZ_BM'], 'unused window with state');
  t.same(localAllocProblems(la(600, 100), { i_used: 0, i_total: 8 }, 100, 500).map((p) => p.code), ['LALLOC_BM_OVERRUN'], 'window outside the volume');
  t.same(localAllocProblems(la(495, 100), { i_used: 9, i_total: 8 }, 100, 500).map((p) => p.code), ['LALLOC_BM_STRADDLE', 'LALLOC_USED_OVERRUN'], 'straddle, i_used > i_total');
  t.same(localAllocProblems(la(0, 200), { i_used: 0, i_total: 1000 }, 100, 5000).map((p) => p.code), ['LALLOC_SIZE', 'LALLOC_BM_SIZE'], 'la_size, i_total beyond the bitmap');
  const tl = { count: 4, used: 2, reserved1: 0, recs: [{ t_start: 10, t_clusters: 5 }, { t_start: 498, t_clusters: 5 }] };
  t.same(truncateLogRecordProblems(tl, 500).map((p) => `${p.rec}:${p.field}`), ['1:t_clusters'], 'record past the volume');
  t.equal(symlinkMaxSize({ i_clusters: 0 }, 4096, 4096), 4096 - 0xc0 - 1, 'fast symlink: id2 less the NUL');
  t.equal(symlinkMaxSize({ i_clusters: 1 }, 512, 4096), 4095, 'slow symlink: PATH_MAX - 1');
  t.equal(symlinkMaxSize({ i_clusters: 1 }, 512, 1024), 1023, 'slow symlink: its cluster');
  t.equal(direntNameProblem(Buffer.from('ok')), null, 'a plain name');
  t.match(direntNameProblem(Buffer.from('a\0b')), /NUL at byte 1/, 'NUL');
  t.match(direntNameProblem(Buffer.from('a/b')), /'\/' at byte 1/, 'slash');
});
