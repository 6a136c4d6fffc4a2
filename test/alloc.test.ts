import t from 'tap';
import { Volume } from '../src/libocfs2/volume';
import { DirectTransactionManager } from '../src/libocfs2/txn';
import { Allocators, type ClusterRun } from '../src/libocfs2/alloc';
import { ExtentTree } from '../src/libocfs2/extenttree';
import { allLeafExtents } from '../src/libocfs2/extentmap';
import { inodeExtentList } from '../src/libocfs2/structs/dinode';
import { PosixError } from '../src/libocfs2/errors';
import { fsck, makeFile, mkfs, rng, setFileSize, tmp, debugfs } from './alloc-helpers';

const FEATURES = 'sparse,unwritten,inline-data,metaecc,discontig-bg,xattr,noindexed-dirs';

/** Open, run `fn` with allocators, then unmount cleanly (flush truncate log, release window). */
async function withVolume<T>(img: string, fn: (v: { vol: Volume; alloc: Allocators; tm: DirectTransactionManager }) => Promise<T>): Promise<T> {
  const vol = await Volume.open(img, { readOnly: false });
  try {
    const alloc = await Allocators.load(vol, 0);
    const tm = new DirectTransactionManager(vol);
    const out = await fn({ vol, alloc, tm });
    await tm.run((tx) => alloc.flushTruncateLog(tx));
    await tm.run((tx) => alloc.releaseLocalAlloc(tx));
    await tm.flush();
    return out;
  } finally {
    await vol.close();
  }
}

t.test('local alloc window size follows ocfs2_la_default_mb', async (t) => {
  const dir = tmp('alloc-la-');
  for (const g of [{ bs: 512, cs: 4096, mb: 64, want: 2048 }, { bs: 4096, cs: 4096, mb: 256, want: (106 << 8) }, { bs: 4096, cs: 4096, mb: 64, want: 32 << 8 }]) {
    const img = mkfs(dir, { bs: g.bs, cs: g.cs, mb: g.mb, slots: 2 });
    const vol = await Volume.open(img, { readOnly: true });
    // 4K/4K: (126 - 16) & ~4 = 106 MiB, capped by volume/slots (32 MiB for 64 MiB / 2 slots).
    t.equal(Allocators.defaultLocalAllocBits(vol), g.want, `${g.bs}/${g.cs} ${g.mb} MiB`);
    await vol.close();
  }
});

t.test('claim and free clusters against a model; fsck clean', async (t) => {
  const dir = tmp('alloc-model-');
  const img = mkfs(dir, { bs: 512, cs: 4096, mb: 96, features: FEATURES });
  const rand = rng(7);
  await withVolume(img, async ({ vol, alloc, tm }) => {
    const file = await tm.run((tx) => makeFile(vol, alloc, tx, 'model'));
    const tree = ExtentTree.forInode(vol, alloc, file.blkno);
    const owned = new Map<number, ClusterRun & { cpos: number }>(); // cpos -> run
    const used = new Set<number>();
    let cpos = 0;
    let clusters = 0;
    let maxEnd = 0;
    for (let i = 0; i < 2200; i++) {
      if (owned.size > 0 && rand() < 0.25) {
        const keys = [...owned.keys()];
        const k = keys[Math.floor(rand() * keys.length)]!;
        const r = owned.get(k)!;
        owned.delete(k);
        await tm.run(async (tx) => {
          const removed = await tree.remove(tx, r.cpos, r.count);
          t.equal(removed.reduce((s, x) => s + x.clusters, 0), r.count);
          for (const x of removed) await alloc.freeClusters(tx, { start: x.blkno / vol.clusterBlocks, count: x.clusters });
          clusters -= r.count;
          await setFileSize(vol, tx, file.blkno, clusters, maxEnd);
        });
        for (let c = r.start; c < r.start + r.count; c++) used.delete(c);
      } else {
        const want = 1 + Math.floor(rand() * 12);
        const run = await tm.run(async (tx) => {
          const run = await alloc.claimClusters(tx, 1, want);
          const at = cpos;
          cpos += run.count + 1; // a hole after each run keeps records apart
          await tree.insert(tx, { cpos: at, clusters: run.count, blkno: run.start * vol.clusterBlocks, flags: 0 });
          clusters += run.count;
          maxEnd = Math.max(maxEnd, at + run.count);
          await setFileSize(vol, tx, file.blkno, clusters, maxEnd);
          return { ...run, cpos: at };
        });
        for (let c = run.start; c < run.start + run.count; c++) {
          if (used.has(c)) t.fail(`cluster ${c} handed out twice`);
          used.add(c);
        }
        owned.set(run.cpos, run);
      }
    }
    const { buf } = await vol.readInode(file.blkno);
    const leaves = await allLeafExtents(vol, inodeExtentList(buf, file.blkno), file.blkno);
    t.equal(leaves.reduce((s, x) => s + x.clusters, 0), clusters, 'tree holds the model clusters');
    t.ok(inodeExtentList(buf, file.blkno).treeDepth >= 2, `depth ${inodeExtentList(buf, file.blkno).treeDepth} >= 2`);
  });
  const r = fsck(img);
  t.equal(r.status, 0, r.out);
  t.notMatch(r.out, /\[[A-Z_]+\]|Skipping journal|ERROR/);
});
