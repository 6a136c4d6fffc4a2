/**
 * The bundled mkfs judged by ocfs2-tools: for a representative slice of the
 * matrix block 512/1K/2K/4K x cluster 4K/32K/1M x slots 1/2/8/32 x
 * local/cluster x default/max-features (the whole matrix with
 * OCFS2_FULL_MATRIX=1), at sizes from the smallest volume we accept to 64 GiB
 * sparse: fsck.ocfs2 -fn is clean, debugfs.ocfs2 stats shows what was asked,
 * and the layout (system inode set and block numbers, every stat of every
 * system file, groups, chains, journals) equals what mkfs.ocfs2 makes with
 * the same arguments.  Also: bad input, dry run, refusal of a mounted volume
 * and of live heartbeat, and our read-only mount of what we made.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, diffText, fsckClean, refMkfs, run, sparseImage, tmp } from './mkfs-compare';
import { formatVolume } from '../src/libocfs2/mkfs/format';
import { computeGeometry, MkfsError, resolveFeatures } from '../src/libocfs2/mkfs/options';
import { computeLayout } from '../src/libocfs2/mkfs/layout';
import { Ocfs1VolDiskHdr, Ocfs1VolLabel } from '../src/libocfs2/mkfs/ocfs1';
import { locateHeartbeatArea } from '../src/cluster/heartbeat/locate';
import { prepareO2hbBlock } from '../src/libocfs2/structs/heartbeat';
import { CLI, mountRo } from './lib/mount';
import { REPO_ROOT } from './lib/refimages';

const dir = tmp('matrix');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const GiB = 2 ** 30;
const BS = [512, 1024, 2048, 4096];
const CS = [4096, 32768, 1048576];
const SLOTS = [1, 2, 8, 32];

/** Smallest size in MiB our layout accepts for these arguments (pure computation, no I/O). */
function minimumMiB(bs: number, cs: number, slots: number, level: 'default' | 'max-features'): number {
  const ok = (mib: number): boolean => {
    try {
      const g = computeGeometry({ blockSize: bs, clusterSize: cs, slots, featureLevel: level }, mib * 2 ** 20);
      computeLayout({ geometry: g, label: '', uuid: Buffer.alloc(16, 1), generation: 1, now: 1, dxSeed: [1, 2, 3] });
      return true;
    } catch (e) {
      if (e instanceof MkfsError) return false;
      throw e;
    }
  };
  // Not a binary search: validity is not monotonic (512-byte blocks on
  // 16..128 MiB get journals under the 4 MiB minimum).
  let lo = 1;
  while (!ok(lo)) lo++;
  return lo;
}

interface MatrixCase { bs: number; cs: number; slots: number; mode: 'local' | 'cluster'; level: 'default' | 'max-features'; bytes: number }

function args(c: MatrixCase): string[] {
  return ['-b', String(c.bs), '-C', String(c.cs), '-N', String(c.slots), '-M', c.mode, `--fs-feature-level=${c.level}`];
}

function allCases(): MatrixCase[] {
  const out: MatrixCase[] = [];
  let k = 0;
  for (const bs of BS) for (const cs of CS) for (const slots of SLOTS) for (const mode of ['local', 'cluster'] as const) {
    for (const level of ['default', 'max-features'] as const) {
      const min = minimumMiB(bs, cs, slots, level) * 2 ** 20;
      // Walk the sizes: the minimum, just over 1 GiB (first backup), 3 GiB, 64 GiB.
      const sizes = [min, GiB + 64 * 2 ** 20, 3 * GiB, 64 * GiB];
      out.push({ bs, cs, slots, mode, level, bytes: Math.max(min, sizes[k++ % sizes.length]!) });
    }
  }
  return out;
}

/** A slice that touches every value of every axis and each size class. */
const SUBSET: MatrixCase[] = [
  { bs: 512, cs: 4096, slots: 1, mode: 'local', level: 'default', bytes: 0 },
  { bs: 1024, cs: 32768, slots: 2, mode: 'cluster', level: 'max-features', bytes: GiB + 64 * 2 ** 20 },
  { bs: 2048, cs: 1048576, slots: 8, mode: 'local', level: 'max-features', bytes: 3 * GiB },
  { bs: 4096, cs: 4096, slots: 8, mode: 'cluster', level: 'default', bytes: 64 * GiB },
  { bs: 2048, cs: 4096, slots: 32, mode: 'local', level: 'default', bytes: 2 * GiB },
  { bs: 4096, cs: 1048576, slots: 2, mode: 'local', level: 'max-features', bytes: 0 },
  { bs: 512, cs: 32768, slots: 32, mode: 'cluster', level: 'max-features', bytes: 3 * GiB },
];

const cases = process.env.OCFS2_FULL_MATRIX === '1' ? allCases()
  : SUBSET.map((c) => ({ ...c, bytes: c.bytes || minimumMiB(c.bs, c.cs, c.slots, c.level) * 2 ** 20 }));

/**
 * Run tools/mkfs.ocfs2.  Under tap, children get its ESM loader hooks, which
 * reject a main module named "*.ocfs2"; requiring it from -e is unaffected.
 */
function tool(a: string[]): { status: number; stdout: string; stderr: string } {
  const entry = path.join(REPO_ROOT, 'tools', 'mkfs.ocfs2');
  return run(process.execPath, ['-e', `process.argv.splice(1, 0, ${JSON.stringify(entry)}); require(${JSON.stringify(entry)})`, '--', ...a]);
}

function ourMkfs(file: string, a: string[]): { status: number; stderr: string; stdout: string } {
  return run(process.execPath, [CLI, 'mkfs', '-q', '-F', ...a, file]);
}

/** With OCFS2_FULL_MATRIX=1, one line per case goes to $OCFS2_MATRIX_REPORT (if set). */
const reportTo = process.env.OCFS2_MATRIX_REPORT;
const report = (line: string): void => { if (reportTo) fs.appendFileSync(reportTo, `${line}\n`); };

for (const c of cases) {
  const name = `b${c.bs} C${c.cs} N${c.slots} ${c.mode} ${c.level} ${(c.bytes / 2 ** 20).toFixed(0)}MiB`;
  t.test(name, async (t) => {
    const ref = path.join(dir, 'ref.img');
    const our = path.join(dir, 'our.img');
    sparseImage(ref, c.bytes);
    sparseImage(our, c.bytes);
    let refError = '';
    try { refMkfs(ref, args(c)); } catch (e) { refError = (e as Error).message; }
    const r = ourMkfs(our, args(c));
    if (refError) {
      // mkfs.ocfs2 ran out of space part way (e.g. 32 journals on 1 GiB): we refuse up front.
      t.not(r.status, 0, `mkfs.ocfs2 failed (${refError.trim()}); ours refuses too`);
      t.match(r.stderr, /too small/);
      report(`${name}: mkfs.ocfs2 fails (${refError.replace(/\s+/g, ' ').slice(-90)}); ours refuses: ${r.stderr.trim()}`);
      return;
    }
    t.equal(r.status, 0, `our mkfs exits 0 (${r.stderr.trim()})`);
    const f = fsckClean(our);
    t.ok(f.ok, 'fsck.ocfs2 -fn is clean', { out: f.ok ? undefined : f.out });
    const stats = run('debugfs.ocfs2', ['-R', 'stats', our]).stdout;
    t.match(stats, new RegExp(`Block Size Bits: ${Math.log2(c.bs)}\\s+Cluster Size Bits: ${Math.log2(c.cs)}`), 'geometry');
    t.match(stats, new RegExp(`Max Node Slots: ${c.slots}\\b`), 'slots');
    const want = resolveFeatures(c.level, undefined);
    t.match(stats, new RegExp(`Feature Incompat: ${want.incompat | (c.mode === 'local' ? 8 : 0)} `), 'incompat features');
    t.match(stats, new RegExp(`Feature RO compat: ${want.roCompat} `), 'ro_compat features');
    const d = diffText(describe(ref), describe(our));
    t.equal(d, '', 'layout equals mkfs.ocfs2\'s');
    report(`${name}: fsck ${f.ok ? 'clean' : 'NOT CLEAN'}, layout ${d ? `DIFFERS\n${d}` : 'identical'}`);
  });
}

t.test('more mkfs.ocfs2 options give the same layout', async (t) => {
  const extra: Array<[number, string[]]> = [
    [3 * GiB, ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=mycl', '--global-heartbeat']],
    [5 * GiB, ['-T', 'vmstore', '-N', '2']],
    [3 * GiB, ['-T', 'mail', '-N', '3', '-L', 'mailvol', '-J', 'size=16M', '--no-backup-super']],
    [3 * GiB, ['-N', '3', '--fs-features=metaecc,nosparse,usrquota,noextended-slotmap,nodiscontig-bg']],
    [3 * GiB, ['--fs-feature-level=max-compat', '-N', '2']],
    [2 * GiB, ['-N', '2', '-U', '0123456789abcdef0123456789ABCDEF']],
  ];
  for (const [bytes, a] of extra) {
    const ref = path.join(dir, 'ref.img');
    const our = path.join(dir, 'our.img');
    sparseImage(ref, bytes);
    sparseImage(our, bytes);
    refMkfs(ref, a);
    const r = ourMkfs(our, a);
    t.equal(r.status, 0, `${a.join(' ')}: exit 0 ${r.stderr}`);
    t.ok(fsckClean(our).ok, `${a.join(' ')}: fsck clean`);
    t.equal(diffText(describe(ref), describe(our)), '', `${a.join(' ')}: same layout`);
  }
  // The comparison can fail: two volumes that differ only in slot count differ.
  sparseImage(path.join(dir, 'ref.img'), GiB);
  sparseImage(path.join(dir, 'our.img'), GiB);
  refMkfs(path.join(dir, 'ref.img'), ['-N', '2']);
  refMkfs(path.join(dir, 'our.img'), ['-N', '3']);
  t.not(diffText(describe(path.join(dir, 'ref.img')), describe(path.join(dir, 'our.img'))), '', 'describe tells -N 2 from -N 3');
  sparseImage(path.join(dir, 'our.img'), 2 * GiB);
  t.equal(ourMkfs(path.join(dir, 'our.img'), ['-N', '2', '-U', '0123456789abcdef0123456789ABCDEF']).status, 0);
  // -U is taken literally.
  t.match(run('debugfs.ocfs2', ['-R', 'stats', path.join(dir, 'our.img')]).stdout, /UUID: 0123456789ABCDEF0123456789ABCDEF/);
});

t.test('the OCFS1 compatibility blocks', async (t) => {
  t.equal(Ocfs1VolDiskHdr.size, 0x1b0);
  t.equal(Ocfs1VolLabel.size, 0xc6);
  const ref = path.join(dir, 'ref.img');
  const our = path.join(dir, 'our.img');
  for (const bs of [512, 4096]) {
    sparseImage(ref, 256 * 2 ** 20);
    sparseImage(our, 256 * 2 ** 20);
    refMkfs(ref, ['-b', String(bs), '-N', '2']);
    t.equal(ourMkfs(our, ['-b', String(bs), '-N', '2']).status, 0);
    const a = Buffer.alloc(2 * bs);
    const b = Buffer.alloc(2 * bs);
    const fa = fs.openSync(ref, 'r');
    const fb = fs.openSync(our, 'r');
    fs.readSync(fa, a, 0, a.length, 0);
    fs.readSync(fb, b, 0, b.length, 0);
    fs.closeSync(fa);
    fs.closeSync(fb);
    t.ok(a.equals(b), `leading ${2 * bs} bytes equal mkfs.ocfs2's at -b ${bs}`);
  }
});

t.test('bad input: one line, non-zero exit, no stack trace', async (t) => {
  const img = path.join(dir, 'bad.img');
  sparseImage(img, 64 * 2 ** 20);
  const empty = path.join(dir, 'empty.img');
  fs.writeFileSync(empty, '');
  const tiny = path.join(dir, 'tiny.img');
  sparseImage(tiny, 600 * 1024);
  const bad: Array<[string[], RegExp]> = [
    [['-b', '3000x', img], /bad number/],
    [['-b', '8192', img], /block size/],
    [['-C', '2M', img], /cluster size/],
    [['-N', '0', img], /node slots/],
    [['-N', '300', img], /node slots/],
    [['--fs-features=bogus', img], /unknown feature/],
    [['--fs-feature-level=huge', img], /fs-feature-level/],
    [['-T', 'games', img], /fs type/],
    [['-M', 'shared', img], /mount type/],
    [['-J', 'size=1M', img], /journal size/],
    [['-U', 'xyz', img], /UUID/],
    [['-L', 'x'.repeat(64), img], /label too long/],
    [['--cluster-stack=o2cb', img], /cluster name/],
    [['-M', 'local', '--cluster-stack=o2cb', '--cluster-name=a', img], /local mount/],
    [[dir], /is a directory/],
    [[path.join(dir, 'nope.img')], /cannot open/],
    [[empty], /too small/],
    [[tiny], /too small/],
    [[img, '99999999'], /greater than/],
    [[img, '12abc'], /block count/],
  ];
  for (const [a, re] of bad) {
    const r = run(process.execPath, [CLI, 'mkfs', '-q', ...a]);
    t.not(r.status, 0, `${a.join(' ')} fails`);
    t.match(r.stderr, re, `${a.join(' ')}: ${r.stderr.trim()}`);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  // The tools/ entry point behaves the same.
  const r = tool(['--fs-features=bogus', img]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^mkfs\.ocfs2: unknown feature/);
});

t.test('dry run writes nothing; tools/mkfs.ocfs2 formats', async (t) => {
  const img = path.join(dir, 'dry.img');
  sparseImage(img, 300 * 2 ** 20);
  const r = tool(['-n', '-N', '3', img]);
  t.equal(r.status, 0);
  t.match(r.stdout, /Node slots: 3/);
  t.match(r.stdout, /Dry run/);
  const buf = fs.readFileSync(img);
  t.ok(buf.every((b) => b === 0), 'image untouched');
  const w = tool(['-N', '3', '-L', 'tooltest', img]);
  t.equal(w.status, 0, w.stderr);
  t.match(w.stdout, /mkfs\.ocfs2 successful/);
  t.ok(fsckClean(img).ok);
  t.match(run('debugfs.ocfs2', ['-R', 'stats', img]).stdout, /Label: tooltest/);
});

t.test('refuses a volume with live heartbeat, and a mounted one', async (t) => {
  const img = path.join(dir, 'hb.img');
  sparseImage(img, 256 * 2 ** 20);
  t.equal(ourMkfs(img, ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=hbt']).status, 0);
  const area = locateHeartbeatArea(img);
  const fd = fs.openSync(img, 'r+');
  let seq = 1n;
  const beat = (): void => {
    const blk = prepareO2hbBlock(area.blockBytes, { seq: seq++, node: 3, generation: 0x1234n, deadMs: 62000 });
    fs.writeSync(fd, blk, 0, blk.length, (area.startBlock + 3) * area.blockBytes);
  };
  beat();
  const timer = setInterval(beat, 200);
  try {
    await t.rejects(formatVolume(img, { slots: 2, quiet: true }, { heartbeatIntervalMs: 600 }),
      { name: 'MkfsError', message: /live heartbeat from node\(s\) 3/ });
  } finally {
    clearInterval(timer);
    fs.closeSync(fd);
  }
  // A stale (not changing) heartbeat block is not live: formatting goes ahead.
  // (over the existing volume: as -F or a "y" would allow)
  const r = await formatVolume(img, { slots: 2, quiet: true }, { heartbeatIntervalMs: 300, confirmOverwrite: async () => true });
  t.equal(r.geometry.slots, 2);
  t.ok(fsckClean(img).ok);

  // Mounted (our FUSE mount names the image as its source): refused without -F.
  const m = mountRo(img);
  try {
    const x = run(process.execPath, [CLI, 'mkfs', '-q', img]);
    t.not(x.status, 0);
    t.match(x.stderr, /is mounted/);
  } finally {
    m.unmount();
  }
});

t.test('our read-only mount reads what our mkfs made', async (t) => {
  const img = path.join(dir, 'ro.img');
  sparseImage(img, 512 * 2 ** 20);
  t.equal(ourMkfs(img, ['-N', '2', '--fs-feature-level=max-features']).status, 0);
  const m = mountRo(img);
  try {
    t.same(fs.readdirSync(m.mountpoint).sort(), ['lost+found']);
    t.same(fs.readdirSync(path.join(m.mountpoint, 'lost+found')), []);
    t.ok(fs.statSync(path.join(m.mountpoint, 'lost+found')).isDirectory());
  } finally {
    m.unmount();
  }
});

t.test('journal superblocks as mkfs.ocfs2 writes them', async (t) => {
  const ref = path.join(dir, 'ref.img');
  const our = path.join(dir, 'our.img');
  sparseImage(ref, 300 * 2 ** 20);
  sparseImage(our, 300 * 2 ** 20);
  refMkfs(ref, ['-N', '2', '-b', '512', '-U', '00112233445566778899aabbccddeeff']);
  t.equal(ourMkfs(our, ['-N', '2', '-b', '512', '-U', '00112233445566778899aabbccddeeff']).status, 0);
  const jblk = (f: string): Buffer => {
    const m = /0\s+0\s+\d+\s+(\d+)/.exec(run('debugfs.ocfs2', ['-R', 'stat //journal:0001', f]).stdout)!;
    const b = Buffer.alloc(512);
    const fd = fs.openSync(f, 'r');
    fs.readSync(fd, b, 0, 512, Number(m[1]) * 512);
    fs.closeSync(fd);
    return b;
  };
  t.ok(jblk(ref).equals(jblk(our)), 'journal superblock bytes equal');
});
