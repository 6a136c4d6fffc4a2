/**
 * inspect against `debugfs.ocfs2 -R` on the reference images: the same
 * numbers (geometry, inode numbers, sizes, extent records, chain records,
 * slot map, heartbeat), and clean errors on bad input (check and inspect).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { pristineImage } from './lib/refimages';
import { runCli, tmpDir, CLI } from './lib/mount';

const PATH = `${process.env.PATH ?? ''}:/sbin:/usr/sbin`;
function debugfs(img: string, cmd: string): string {
  const r = spawnSync('timeout', ['60', 'debugfs.ocfs2', '-R', cmd, img], { encoding: 'utf8', env: { ...process.env, PATH } });
  return r.stdout;
}
function inspect(img: string, ...args: string[]): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = runCli(['inspect', img, ...args, '--json']);
  if (r.status !== 0) throw new Error(`inspect ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const dir = tmpDir('inspect');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

for (const name of ['local-4k', 'cluster-1k-64k-max'] as const) {
  const img = pristineImage(name);
  t.test(`${name}: stats`, async (t) => {
    const s = inspect(img, 'stats');
    const d = debugfs(img, 'stats');
    t.match(d, new RegExp(`Block Size Bits: ${s.blockBits}\\s+Cluster Size Bits: ${s.clusterBits}`));
    t.match(d, new RegExp(`Clusters: ${s.clusters}\\b`));
    // whole lines: an empty or truncated label must not match a longer one
    t.ok(s.label.length > 0, `${name} has a label`);
    t.match(d, new RegExp(`^\\s*Label: ${s.label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm'), 'label');
    t.match(d, new RegExp(`^\\s*UUID: ${s.uuid}\\s*$`, 'm'), 'uuid');
    t.match(d, new RegExp(`Root Blknum: ${s.rootBlkno}\\s+System Dir Blknum: ${s.systemDirBlkno}`));
    t.match(d, new RegExp(`Max Node Slots: ${s.maxSlots}`));
  });
  t.test(`${name}: ls -l`, async (t) => {
    for (const p of ['/', '/d5', '/links', '//']) {
      const ours = inspect(img, 'ls', '-l', p).entries.map((e: { inode: number; name: string; size: number }) => `${e.inode} ${e.size} ${e.name}`).sort();
      const theirs = debugfs(img, `ls -l ${p}`).split('\n').filter((l) => l.trim()).map((l) => {
        const f = l.trim().split(/\s+/);
        return `${f[0]} ${f[5]} ${f.slice(8).join(' ')}`;
      }).sort();
      t.same(ours, theirs, `ls -l ${p}`);
    }
  });
  t.test(`${name}: stat extent records and chain records`, async (t) => {
    for (const p of ['/random-1m.bin', '/frag/ileave-a.bin', '//global_bitmap', '/small/s100', '/d3000']) {
      const s = inspect(img, 'stat', p);
      const d = debugfs(img, `stat ${p}`);
      t.match(d, new RegExp(`Inode: ${s.inode}\\s`), `${p} inode`);
      t.match(d, new RegExp(`Size: ${s.size}\\b`), `${p} size`);
      t.match(d, new RegExp(`Links: ${s.links}\\s+Clusters: ${s.clusters}\\b`), `${p} links/clusters`);
      const recs: string[] = [];
      const walk = (x: { recs: Array<{ cpos: number; clusters: number; blkno: number; child?: unknown }> }): void => {
        for (const r of x.recs) { recs.push(`${r.cpos} ${r.clusters} ${r.blkno}`); if (r.child) walk(r.child as typeof x); }
      };
      if (s.extents) walk(s.extents);
      const theirRecs = [...d.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+0x[0-9a-f]+\s*$/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
      t.same(recs.sort(), theirRecs.sort(), `${p} extent records`);
      if (s.chains) {
        for (const c of s.chains.recs) t.match(d, new RegExp(`${c.chain}\\s+${c.total}\\s+${c.total - c.free}\\s+${c.free}\\s+${c.blkno}`), `chain ${c.chain}`);
      }
    }
  });
  t.test(`${name}: cat and dump`, async (t) => {
    const r = runCli(['inspect', img, 'cat', '/text/seq.txt']);
    t.equal(r.stdout, Array.from({ length: 9500 }, (_, i) => `${i + 1}\n`).join(''));
    const out = path.join(dir, 'r.bin');
    inspect(img, 'dump', '/random-1m.bin', out);
    const d = path.join(dir, 'd.bin');
    debugfs(img, `dump /random-1m.bin ${d}`);
    t.equal(crypto.createHash('md5').update(fs.readFileSync(out)).digest('hex'), crypto.createHash('md5').update(fs.readFileSync(d)).digest('hex'));
  });
  t.test(`${name}: bitmap totals`, async (t) => {
    const b = inspect(img, 'bitmap');
    const d = debugfs(img, 'stat //global_bitmap');
    t.match(d, new RegExp(`Bitmap Total: ${b.totalClusters}\\s+Used: ${b.usedClusters}\\s+Free: ${b.freeClusters}`));
    // freefrag against debugfs.ocfs2's grpextents (free runs of every group of the global bitmap)
    const ff = inspect(img, 'freefrag');
    const groups = [...d.matchAll(/^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s*$/gm)].map((m) => m[1]!);
    t.ok(groups.length > 0, `debugfs lists the global bitmap's groups (${groups.length})`);
    const runs: number[] = [];
    for (const g of groups) {
      for (const m of debugfs(img, `grpextents <${g}>`).matchAll(/(?:^|\s)\d+\s+(\d+)\s+(\d+)(?=\s)/gm)) runs.push(Number(m[2]));
    }
    t.equal(ff.freeClusters, runs.reduce((a, n) => a + n, 0), 'freefrag free clusters = the sum of debugfs free runs');
    t.equal(ff.freeExtents, runs.length, 'freefrag free extents = debugfs grpextents count');
    t.equal(ff.maxFreeExtentClusters, Math.max(...runs), 'longest free extent as debugfs');
    const buckets = new Map<number, { extents: number; clusters: number }>();
    for (const n of runs) {
      const from = 2 ** Math.floor(Math.log2(n));
      const e = buckets.get(from) ?? { extents: 0, clusters: 0 };
      e.extents++; e.clusters += n; buckets.set(from, e);
    }
    t.same(ff.histogram.map((h: { from: number; extents: number; clusters: number }) => `${h.from} ${h.extents} ${h.clusters}`),
      [...buckets].sort((x, y) => x[0] - y[0]).map(([from, e]) => `${from} ${e.extents} ${e.clusters}`), 'histogram as debugfs free runs give it');
  });
}

t.test('dirty-journal-4k: slotmap, hb, logdump', async (t) => {
  const img = pristineImage('dirty-journal-4k');
  const sm = inspect(img, 'slotmap');
  const dsm = debugfs(img, 'slotmap').split('\n').slice(1).filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).map(Number));
  t.same(sm.slots.filter((s: { node: number | null }) => s.node !== null).map((s: { slot: number; node: number }) => [s.slot, s.node]), dsm);
  const hb = inspect(img, 'hb');
  const dhb = debugfs(img, 'hb').split('\n').slice(1).filter((l) => l.trim()).map((l) => l.trim().split(/\s+/));
  t.equal(hb.blocks.length, dhb.length);
  hb.blocks.forEach((b: { slot: number; node: number; seq: string; generation: string; checksum: number; deadMs: number; checksumOk: boolean }, i: number) => {
    const f = dhb[i]!;
    t.same([`${b.slot}:`, String(b.node), b.seq.slice(2), b.generation.slice(2), b.checksum.toString(16).padStart(8, '0'), String(b.deadMs)], f);
    t.ok(b.checksumOk);
  });
  const ld = inspect(img, 'logdump', '0');
  t.ok(ld.transactions.length > 0, `${ld.transactions.length} transactions`);
  const d = debugfs(img, 'logdump 0');
  const seqs = [...d.matchAll(/^\s*Seq: (\d+)/gm)].map((m) => Number(m[1]));
  for (const tr of ld.transactions) t.ok(seqs.includes(tr.sequence), `transaction ${tr.sequence} in debugfs logdump`);
  const fsBlocks = new Set([...d.matchAll(/^\s*\d+\.\s+(\d+)\s/gm)].map((m) => Number(m[1])));
  for (const tr of ld.transactions) for (const e of tr.entries) if (e.kind === 'descriptor') for (const tg of e.tags) t.ok(fsBlocks.has(tg.fsBlock), `fs block ${tg.fsBlock}`);
});

t.test('bad input: clear error, non-zero exit, no stack trace', async (t) => {
  const zero = path.join(dir, 'zero.img');
  fs.writeFileSync(zero, '');
  const rnd = path.join(dir, 'random.img');
  fs.writeFileSync(rnd, crypto.randomBytes(4 << 20));
  const trunc = path.join(dir, 'trunc.img');
  const src = fs.openSync(pristineImage('local-4k'), 'r');
  const buf = Buffer.alloc(1 << 20);
  fs.readSync(src, buf, 0, buf.length, 0);
  fs.closeSync(src);
  fs.writeFileSync(trunc, buf);
  for (const input of [zero, rnd, trunc, dir, path.join(dir, 'missing.img')]) {
    for (const args of [['check', input], ['check', '-y', input], ['inspect', input, 'stats'], ['inspect', input, 'ls', '/']]) {
      const r = runCli(args);
      t.not(r.status, 0, `${args.join(' ')} fails`);
      t.ok(r.stderr.trim().length > 0 && r.stderr.split('\n').length <= 3, `one-line error: ${r.stderr.trim()}`);
      t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  }
  t.equal(runCli(['check', zero]).status, 8, 'operational error: exit 8');
});
