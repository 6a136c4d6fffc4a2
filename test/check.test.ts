/**
 * The checker against fsck.ocfs2 1.8.7: clean volumes are clean, damaged
 * copies show the same problem classes `fsck.ocfs2 -fn` shows (beyond what
 * fsck already reports on the pristine image: its INODE_SPARSE_SIZE for
 * fallocate --keep-size files and DX_TREE_MISSING for the system directory),
 * and after `check -y` both tools find the volume clean.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { checkVolume } from '../src/libocfs2/check';
import { pristineImage, copyOfImage, type ReferenceImage } from './lib/refimages';
import { runCli, tmpDir } from './lib/mount';
import * as D from './check-damage';

const PATH = `${process.env.PATH ?? ''}:/sbin:/usr/sbin`;

function fsck(img: string): { codes: Set<string>; out: string } {
  const r = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { encoding: 'utf8', env: { ...process.env, PATH } });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status === null || !/Pass 4b/.test(out)) throw new Error(`fsck.ocfs2 failed: ${out}`);
  return { codes: new Set([...out.matchAll(/^\[([A-Z0-9_]+)\]/gm)].map((m) => m[1]!)), out };
}

/** Problem classes, with fsck's alternative answers to a doubly claimed cluster folded into one. */
function classes(codes: Iterable<string>, baseline: Set<string>): string[] {
  const out = new Set<string>();
  for (const c of codes) if (!baseline.has(c)) out.add(c.startsWith('DUP_CLUSTERS') ? 'DUP_CLUSTERS' : c);
  return [...out].sort();
}

const dir = tmpDir('check');
fs.mkdirSync(path.join(dir, 'twin'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const CLEAN: ReferenceImage[] = ['local-4k', 'local-512-4k', 'cluster-1k-64k-max', 'cluster-4k-compat'];
for (const name of CLEAN) {
  t.test(`clean reference image ${name}`, async (t) => {
    const r = await checkVolume(pristineImage(name));
    t.same(r.problems.map((p) => `${p.code} ${p.message}`), [], 'no problems');
    t.equal(r.exitCode, 0);
    t.ok(r.inodes > 100, `${r.inodes} inodes checked`);
  });
}

t.test('volume made by mkfs.ocfs2 is clean', async (t) => {
  const img = path.join(dir, 'mkfs.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 300 * 1024 * 1024);
  const m = spawnSync('timeout', ['120', 'mkfs.ocfs2', '-q', '-F', '-M', 'local', '-N', '2', '-b', '1024', '-C', '8192', img], { encoding: 'utf8', env: { ...process.env, PATH } });
  t.equal(m.status, 0, m.stderr);
  const r = await checkVolume(img);
  t.same(r.problems, []);
  t.equal(r.exitCode, 0);
  fs.rmSync(img);
});

interface Case { name: string; image: ReferenceImage; damage: (img: string) => Promise<string>; expect: string[]; repairable: boolean }
const CASES: Case[] = [
  { name: 'wrong group free count', image: 'local-4k', damage: D.damageGroupFreeCount, expect: ['GROUP_FREE_BITS'], repairable: true },
  { name: 'cleared bitmap bit of a used cluster', image: 'local-4k', damage: (i) => D.damageClearUsedBit(i), expect: ['CLUSTER_ALLOC_BIT'], repairable: true },
  { name: 'doubly claimed clusters', image: 'local-4k', damage: (i) => D.damageDoubleClaim(i), expect: ['DUP_CLUSTERS'], repairable: false },
  { name: 'dangling directory entry', image: 'local-4k', damage: (i) => D.damageDanglingEntry(i), expect: ['DIRENT_INODE_FREE'], repairable: true },
  { name: 'wrong link count', image: 'local-4k', damage: (i) => D.damageLinkCount(i), expect: ['INODE_COUNT'], repairable: true },
  { name: 'broken chain', image: 'local-4k', damage: (i) => D.damageBrokenChain(i), expect: ['CHAIN_LINK_MAGIC', 'GROUP_EXPECTED_DESC'], repairable: true },
  { name: 'bad block check (metaecc)', image: 'cluster-1k-64k-max', damage: (i) => D.damageBadCheck(i), expect: ['BAD_CRC32'], repairable: true },
];

const baselines = new Map<ReferenceImage, Set<string>>();
for (const c of CASES) {
  t.test(c.name, async (t) => {
    if (!baselines.has(c.image)) baselines.set(c.image, fsck(pristineImage(c.image)).codes);
    const base = baselines.get(c.image)!;
    const img = copyOfImage(c.image, dir);
    t.comment(await c.damage(img));
    const theirs = classes(fsck(img).codes, base);
    const r = await checkVolume(img);
    const ours = classes(r.problems.map((p) => p.code), new Set());
    for (const e of c.expect) {
      t.ok(theirs.includes(e), `fsck.ocfs2 reports ${e}`);
      t.ok(ours.includes(e), `check reports ${e}`);
    }
    if (c.name.includes('metaecc')) {
      // fsck cannot read the directory and then sees its entries as unconnected; we still walk it.
      t.ok(ours.every((x) => theirs.includes(x)), `our classes ${ours} are among fsck's ${theirs}`);
    } else {
      t.same(ours, theirs, 'same problem classes as fsck.ocfs2 -fn');
    }
    // Exit codes through the real CLI, as fsck(8) and fsck.ocfs2(8) document them (0 clean,
    // 1 corrected, 4 left uncorrected), decided by what fsck.ocfs2 finds.  (fsck.ocfs2 1.8.7 itself
    // exits 0 after -fn with problems and after -fy that corrected them: its status is no judge.)
    const oursN = runCli(['check', '-n', img]);
    t.equal(oursN.status, theirs.length > 0 ? 4 : 0, `check -n exits ${oursN.status}: fsck.ocfs2 -fn finds ${theirs.join(', ')} left`);
    t.equal(r.exitCode, oursN.status, 'the library reports the exit code the CLI exits with');
    for (const p of r.problems) t.ok(p.blkno > 0 && p.message.length > 0, `${p.code} names block ${p.blkno}`);
    const fixedCli = runCli(['check', '-y', img], 300);
    const fixed = { exitCode: fixedCli.status };
    const left = classes(fsck(img).codes, base);
    t.equal(fixed.exitCode, left.length === 0 ? 1 : 4, `check -y exits ${fixed.exitCode}: fsck.ocfs2 -fn finds ${left.length ? left.join(', ') : 'nothing'} left`);
    if (fixed.exitCode === 1) t.notMatch(fixedCli.stdout + fixedCli.stderr, /[1-9]\d* problem\(s\) left uncorrected/, 'a -y run that corrected everything says nothing is left');
    if (!c.repairable) {
      // fsck.ocfs2 -y clones doubly claimed clusters; we leave them (not in the safe repair set)
      t.equal(fixed.exitCode, 4, 'not in the safe repair set: left uncorrected');
    } else {
      t.equal(fixed.exitCode, 1, 'exit 1: corrected');
      const again = await checkVolume(img);
      t.same(again.problems.map((p) => p.message), [], 'our check is clean after -y');
      t.same(classes(fsck(img).codes, base), [], 'fsck.ocfs2 -fn is clean after check -y');
    }
    fs.rmSync(img);
  });
}

t.test('dirty journal: -n reports it, -y replays it', async (t) => {
  const img = copyOfImage('dirty-journal-4k', dir);
  const lines: string[] = [];
  const r = await checkVolume(img, { log: (l) => lines.push(l) });
  t.same(r.journals.filter((j) => j.dirty).map((j) => j.slot), [0], "slot 0's journal is dirty");
  t.ok(lines.some((l) => /Skipping journal replay/.test(l)));
  t.ok(r.problems.some((p) => p.code === 'JOURNAL_DIRTY' && !p.fixed));
  t.equal(r.exitCode, 4);
  const y = await checkVolume(img, { repair: true });
  t.ok(y.journals[0]!.replayed && y.journals[0]!.transactions > 0, `replayed ${y.journals[0]!.transactions} transaction(s)`);
  t.same(y.problems.filter((p) => !p.fixed), []);
  t.equal(y.exitCode, 1);
  const f = fsck(img);
  t.notMatch(f.out, /Skipping journal replay/, 'fsck.ocfs2 sees no dirty journal');
  // the judge: the same volume replayed by fsck.ocfs2 itself (-F: no cluster stack here; it stops after the replay)
  const twin = copyOfImage('dirty-journal-4k', path.join(dir, 'twin'));
  const fr = spawnSync('timeout', ['120', 'fsck.ocfs2', '-F', '-y', twin], { input: 'y\n', encoding: 'utf8', env: { ...process.env, PATH } });
  t.match(`${fr.stdout}${fr.stderr}`, /Slot 0's journal replayed successfully/, 'fsck.ocfs2 replayed its copy');
  const theirs = fsck(twin);
  fs.rmSync(twin);
  t.same([...f.codes].sort(), [...theirs.codes].sort(), `fsck.ocfs2 -fn finds on ours what it finds on its own replay (${[...theirs.codes].join(', ') || 'nothing'})`);
  t.equal((await checkVolume(img)).exitCode, 0, 'our check is clean');
  fs.rmSync(img);
});
