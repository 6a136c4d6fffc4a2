import t from 'tap';
import { testSeed } from './lib/judges';
import * as fs from 'node:fs';
import { Volume } from '../src/libocfs2/volume';
import { DirectTransactionManager } from '../src/libocfs2/txn';
import { Allocators, ChainAllocator, type ClusterRun, type SubAlloc } from '../src/libocfs2/alloc';
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
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
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
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = mkfs(dir, { bs: 512, cs: 4096, mb: 96, features: FEATURES });
  const rand = rng(testSeed(t, 7));
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

t.test('fill to ENOSPC, fragment, grow suballocators (discontiguous groups), free, reuse; clean state after close', async (t) => {
  const dir = tmp('alloc-enospc-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = mkfs(dir, { bs: 512, cs: 4096, mb: 48, features: FEATURES });
  await withVolume(img, async ({ vol, alloc, tm }) => {
    const cb = vol.clusterBlocks;
    const a = await tm.run((tx) => makeFile(vol, alloc, tx, 'a'));
    const b = await tm.run((tx) => makeFile(vol, alloc, tx, 'b'));
    const files = [
      { id: a, tree: ExtentTree.forInode(vol, alloc, a.blkno), cpos: 0, clusters: 0 },
      { id: b, tree: ExtentTree.forInode(vol, alloc, b.blkno), cpos: 0, clusters: 0 },
    ];
    let turn = 0;
    let enospc: unknown = null;
    for (let i = 0; i < 100000 && !enospc; i++) {
      const f = files[turn]!;
      try {
        await tm.run(async (tx) => {
          const run = await alloc.claimClusters(tx, 1, 32);
          await f.tree.insert(tx, { cpos: f.cpos, clusters: run.count, blkno: run.start * cb, flags: 0 });
          await setFileSize(vol, tx, f.id.blkno, f.clusters + run.count, f.cpos + run.count);
          f.cpos += run.count;
          f.clusters += run.count;
        });
      } catch (e) { enospc = e; }
      turn ^= 1;
    }
    t.ok(enospc instanceof PosixError && enospc.code === 'ENOSPC', `ENOSPC at the end (${String(enospc)})`);
    const full = await alloc.statfs();
    t.ok(full.freeClusters < 40, `volume full: ${full.freeClusters} free`);
    // Nothing half-done: the trees hold what the model says.
    for (const f of files) t.equal((await f.tree.records()).reduce((s, r) => s + r.clusters, 0), f.clusters);

    // Free all of b: free space is now ~32-cluster holes, no run of a whole group.
    await tm.run(async (tx) => {
      const removed = await files[1]!.tree.remove(tx, 0, files[1]!.cpos);
      for (const r of removed) await alloc.freeClusters(tx, { start: r.blkno / cb, count: r.clusters });
      await setFileSize(vol, tx, b.blkno, 0, 0);
      files[1]!.clusters = 0;
    });
    await tm.run((tx) => alloc.flushTruncateLog(tx));
    const after = await alloc.statfs();
    t.ok(after.freeClusters > full.freeClusters + 1000, `space back: ${after.freeClusters}`);

    // Grow inode_alloc and extent_alloc by claiming every free bit and one more.
    for (const kind of ['inode', 'meta'] as const) {
      const name = kind === 'inode' ? 'inode_alloc:0000' : 'extent_alloc:0000';
      const sub = new ChainAllocator(vol, vol.systemFile(name), false);
      const before = (await sub.state()).bm.i_total;
      const usedBefore = (await sub.state()).bm.i_used;
      const claimed: SubAlloc[] = [];
      await tm.run(async (tx) => {
        while ((await sub.state()).bm.i_total === before) {
          claimed.push(kind === 'inode' ? await alloc.claimInode(tx) : await alloc.claimMetaBlock(tx));
        }
      });
      const st = await sub.state();
      t.ok(st.bm.i_total > before, `${name} grew to ${st.bm.i_total}`);
      const blocks = new Set(claimed.map((c) => c.blkno));
      t.equal(blocks.size, claimed.length, 'no block handed out twice');
      const last = claimed[claimed.length - 1]!;
      t.ok(last.suballocLoc !== 0, `the new group is discontiguous (loc ${last.suballocLoc})`);
      const { gd } = await sub.readGroup(last.suballocLoc);
      t.ok(gd.list && gd.list.recs.length > 1, `bg_list has ${gd.list?.recs.length} extents`);
      t.equal(gd.header.bg_bits, st.cl.cpg * st.cl.bpc, 'a whole group of bits');
      await tm.run(async (tx) => {
        for (const c of claimed) await (kind === 'inode' ? alloc.freeInode(tx, c) : alloc.freeMetaBlock(tx, c));
      });
      t.equal((await sub.state()).bm.i_used, usedBefore + 1, 'all freed (the new group descriptor stays used)');
    }

    // The space is usable again.
    const f = files[1]!;
    await tm.run(async (tx) => {
      const run = await alloc.claimClusters(tx, 1, 200);
      await f.tree.insert(tx, { cpos: 0, clusters: run.count, blkno: run.start * cb, flags: 0 });
      await setFileSize(vol, tx, b.blkno, run.count, run.count);
    });
  });
  const r = fsck(img);
  t.equal(r.status, 0, r.out);
  t.notMatch(r.out, /\[[A-Z_]+\]|Skipping journal|ERROR/);
  // Clean state after close: no window held, empty truncate log.
  const vol = await Volume.open(img, { readOnly: true });
  const alloc = await Allocators.load(vol, 0);
  t.same(await alloc.localAllocWindow(), { start: 0, total: 0, used: 0 }, 'local alloc released');
  t.equal(await alloc.truncateLogClusters(), 0, 'truncate log flushed');
  await vol.close();
  t.match(debugfs(img, 'stat //inode_alloc:0000'), /Next Free Rec: 2/, 'debugfs sees the new chain');
});
