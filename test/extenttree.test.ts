import t from 'tap';
import { testSeed } from './lib/judges';
import * as fs from 'node:fs';
import { Volume } from '../src/libocfs2/volume';
import { DirectTransactionManager } from '../src/libocfs2/txn';
import { Allocators } from '../src/libocfs2/alloc';
import { ExtentTree, type LeafRec } from '../src/libocfs2/extenttree';
import { allLeafExtents, readMapped } from '../src/libocfs2/extentmap';
import { inodeExtentList } from '../src/libocfs2/structs/dinode';
import { OCFS2_EXT_UNWRITTEN } from '../src/libocfs2/constants';
import { debugfs, fsck, makeFile, mkfs, rng, setFileSize, tmp } from './alloc-helpers';

const MAX = 'sparse,unwritten,inline-data,metaecc,discontig-bg,xattr,noindexed-dirs';

function stamp(cs: number, fileCluster: number, seed: number): Buffer {
  const b = Buffer.alloc(cs);
  for (let i = 0; i < cs; i += 4) b.writeUInt32LE((fileCluster * 2654435761 + i + seed) >>> 0, i);
  return b;
}

for (const g of [
  { name: '512-4k-max', bs: 512, cs: 4096, mb: 64, features: MAX, n: 900 },
  { name: '4k-4k', bs: 4096, cs: 4096, mb: 96, features: 'sparse,unwritten,inline-data,noindexed-dirs', n: 600 },
  { name: '1k-8k-max', bs: 1024, cs: 8192, mb: 96, features: MAX, n: 700 },
]) {
  t.test(`tree of ${g.n} scattered extents on ${g.name}: grow, read back, punch, truncate`, async (t) => {
    const dir = tmp('et-');
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const img = mkfs(dir, g);
    const rand = rng(testSeed(t, g.n));
    const vol = await Volume.open(img, { readOnly: false });
    const alloc = await Allocators.load(vol, 0);
    const tm = new DirectTransactionManager(vol);
    const cb = vol.clusterBlocks;
    const cs = vol.clusterSize;
    const file = await tm.run((tx) => makeFile(vol, alloc, tx, 'deep'));
    const tree = ExtentTree.forInode(vol, alloc, file.blkno);
    // Logical clusters 0..2n-1, every other one mapped, inserted in random order:
    // middle inserts into full leaves, splits and rebuilds.
    const cposList = Array.from({ length: g.n }, (_, i) => i * 2);
    for (let i = cposList.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [cposList[i], cposList[j]] = [cposList[j]!, cposList[i]!];
    }
    const model = new Map<number, number>(); // cpos -> physical cluster
    let clusters = 0;
    for (const cpos of cposList) {
      await tm.run(async (tx) => {
        const run = await alloc.claimClusters(tx, 1, 1);
        await tx.writeData(run.start * cb, stamp(cs, cpos, 1));
        await tree.insert(tx, { cpos, clusters: 1, blkno: run.start * cb, flags: 0 });
        model.set(cpos, run.start);
        clusters++;
        await setFileSize(vol, tx, file.blkno, clusters, 2 * g.n);
      });
    }
    const check = async (what: string): Promise<void> => {
      const { buf } = await vol.readInode(file.blkno);
      const root = inodeExtentList(buf, file.blkno);
      const leaves = await allLeafExtents(vol, root, file.blkno);
      const got = new Map<number, number>();
      for (const l of leaves) for (let c = 0; c < l.clusters; c++) got.set(l.cpos + c, l.blkno / cb + c);
      t.same([...got.entries()].sort((a, b) => a[0] - b[0]), [...model.entries()].sort((a, b) => a[0] - b[0]), `${what}: mapping`);
      for (let k = 0; k < 20; k++) {
        const c = Math.floor(rand() * 2 * g.n);
        const data = await readMapped(vol, root, file.blkno, c * cs, cs);
        t.ok(data.equals(model.has(c) ? stamp(cs, c, 1) : Buffer.alloc(cs)), `${what}: cluster ${c} reads back`);
      }
    };
    await check('after inserts');
    const depth = inodeExtentList((await vol.readInode(file.blkno)).buf, file.blkno).treeDepth;
    t.ok(depth >= (g.bs === 512 ? 2 : 1), `depth ${depth}`);

    // debugfs.ocfs2 reads the same tree.
    await tm.flush();
    const st = debugfs(img, `stat <${file.blkno}>`);
    t.match(st, new RegExp(`Tree Depth: ${depth}\\b`), 'debugfs sees the depth');
    t.match(st, new RegExp(`Clusters: ${clusters}\\b`), 'debugfs sees the clusters');

    // Punch holes (random ranges, some spanning leaves), then truncate the tail.
    const punch = async (cpos: number, n: number): Promise<void> => {
      await tm.run(async (tx) => {
        const removed: LeafRec[] = await tree.remove(tx, cpos, n);
        for (const r of removed) {
          for (let c = 0; c < r.clusters; c++) {
            t.equal(model.get(r.cpos + c), r.blkno / cb + c, 'removed piece maps as the model');
            model.delete(r.cpos + c);
          }
          await alloc.freeClusters(tx, { start: r.blkno / cb, count: r.clusters });
          clusters -= r.clusters;
        }
        await setFileSize(vol, tx, file.blkno, clusters, 2 * g.n);
      });
    };
    for (let k = 0; k < 40; k++) await punch(Math.floor(rand() * 2 * g.n), 1 + Math.floor(rand() * 60));
    await check('after punching');
    await punch(Math.floor(g.n / 2), 2 * g.n);
    await check('after truncate');

    // Unwritten extents: clear the flag in the middle, then everywhere.
    await tm.run(async (tx) => {
      const run = await alloc.claimClusters(tx, 8, 8);
      await tree.insert(tx, { cpos: 3 * g.n, clusters: 8, blkno: run.start * cb, flags: OCFS2_EXT_UNWRITTEN });
      for (let c = 0; c < 8; c++) model.set(3 * g.n + c, run.start + c);
      clusters += 8;
      await setFileSize(vol, tx, file.blkno, clusters, 3 * g.n + 8);
      await tree.setFlags(tx, 3 * g.n + 2, 3, 0, OCFS2_EXT_UNWRITTEN);
    });
    let recs = (await tree.records()).filter((r) => r.cpos >= 3 * g.n);
    t.same(recs.map((r) => [r.cpos - 3 * g.n, r.clusters, r.flags]), [[0, 2, 1], [2, 3, 0], [5, 3, 1]], 'split by flags');
    await tm.run((tx) => tree.setFlags(tx, 3 * g.n, 8, 0, OCFS2_EXT_UNWRITTEN));
    recs = (await tree.records()).filter((r) => r.cpos >= 3 * g.n);
    t.same(recs.map((r) => [r.cpos - 3 * g.n, r.clusters, r.flags]), [[0, 8, 0]], 'merged again once written');

    await tm.run((tx) => alloc.flushTruncateLog(tx));
    await tm.run((tx) => alloc.releaseLocalAlloc(tx));
    await tm.flush();
    await vol.close();
    const r = fsck(img);
    t.equal(r.status, 0, r.out);
    t.notMatch(r.out, /\[[A-Z_]+\]|Skipping journal|ERROR/);
  });
}
