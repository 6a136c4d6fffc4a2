/**
 * Extended attributes of any size and number (fs/ocfs2/xattr.c storage):
 * inline -> external block -> indexed block with buckets split by name hash,
 * values over 80 bytes in value-root extent trees (also fragmented ones that
 * need an extent block), replace/remove with XATTR_CREATE/XATTR_REPLACE, and
 * everything freed when the inode goes.  Checked by fsck.ocfs2 -fn, by
 * debugfs.ocfs2 "xattr", and by a fresh read-only open of ours.
 */
import t, { type Test } from 'tap';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpDir, sh } from './lib/mount';
import { startRwDaemon, type RwDaemon } from './lib/rwdaemon';
import { Ocfs2Fs, openFsVolume, XATTR_CREATE, XATTR_REPLACE, type RwVolumeLike } from '../src/libocfs2/fs';
import { Volume } from '../src/libocfs2/volume';
import { listXattrRefs, readXattrValue } from '../src/libocfs2/xattrs';
import { decodeXattrBlock, listXattrBucket, XATTR_BLOCK_CHECK_OFFSET } from '../src/libocfs2/structs/xattr';
import { errnoOf } from '../src/libocfs2/errors';

const SBIN = 'PATH=$PATH:/sbin:/usr/sbin';
const work = tmpDir('xattr');
if (!process.env.KEEP) t.teardown(() => { sh(`rm -rf ${work}`); });

function mkfs(img: string, bs: number, cs: number, sizeMb: number): void {
  sh(`rm -f ${img} && truncate -s ${sizeMb}M ${img} && ${SBIN} mkfs.ocfs2 -q -F -M local -b ${bs} -C ${cs} -N 2 ${img} >/dev/null`, 120);
  baseline.set(img, new Set(problems(fsck(img).out)));
}

function fsck(img: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['120', 'bash', '-c', `${SBIN} fsck.ocfs2 -fn ${img}`], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const problems = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('['));
/** What fsck.ocfs2 already says about the freshly made volume (mkfs.ocfs2 -b 1024 leaves DX_TREE_MISSING on a system dir). */
const baseline = new Map<string, Set<string>>();

function checkFsck(t: Test, img: string): void {
  const f = fsck(img);
  t.equal(f.status, 0, 'fsck.ocfs2 -fn exit status 0');
  const extra = problems(f.out).filter((l) => !baseline.get(img)?.has(l));
  t.same(extra, [], 'fsck.ocfs2 reports no problem (beyond those of the fresh mkfs)');
  t.notMatch(f.out, /Skipping journal replay/);
}

/** Deterministic pseudo-random bytes. */
function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let h = createHash('sha256').update(seed).digest();
  for (let i = 0; i < n; i += 32) { h.copy(out, i, 0, Math.min(32, n - i)); h = createHash('sha256').update(h).digest(); }
  return out;
}

/** Value sizes cycled through (65535: fsck.ocfs2 1.8.7 miscounts a 65536-byte value in a bucket, see below). */
const SIZES = [0, 1, 7, 80, 81, 100, 300, 1000, 4095, 4096, 4097, 10000, 65535];

async function readAll(vol: Volume, ino: number): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const f = await vol.readInode(ino);
  for (const r of await listXattrRefs(vol, f)) out.set(r.name.toString('latin1'), await readXattrValue(vol, ino, r));
  return out;
}

function sameMap(t: Test, got: Map<string, Buffer>, want: Map<string, Buffer>, msg: string): void {
  const bad: string[] = [];
  for (const [k, v] of want) if (!got.get(k)?.equals(v)) bad.push(k);
  for (const k of got.keys()) if (!want.has(k)) bad.push(`extra ${k}`);
  t.same(bad.slice(0, 10), [], `${msg} (${want.size} attributes)`);
}

const code = async (p: Promise<unknown>): Promise<string> => {
  try { await p; return 'ok'; } catch (e) { return (e as { code?: string }).code ?? String(errnoOf(e)); }
};

/** An allocator view that hands out every other cluster only, so values need many extents. */
function fragmenting(rv: RwVolumeLike): RwVolumeLike {
  const alloc = rv.alloc;
  return {
    ...rv,
    alloc: {
      ...alloc,
      claimClusters: async (tx, _min, _want, goal) => {
        const r = await alloc.claimClusters(tx, 2, 2, goal);
        await alloc.freeClusters(tx, { start: r.start + 1, count: r.count - 1 });
        return { start: r.start, count: 1 };
      },
      freeClusters: (tx, run) => alloc.freeClusters(tx, run),
      claimInode: (tx) => alloc.claimInode(tx),
      claimMetaBlock: (tx) => alloc.claimMetaBlock(tx),
      freeInode: (tx, a) => alloc.freeInode(tx, a),
      freeMetaBlock: (tx, a) => alloc.freeMetaBlock(tx, a),
      statfs: () => alloc.statfs(),
    },
  };
}

for (const [bs, cs] of [[4096, 4096], [1024, 8192]] as const) {
  t.test(`hundreds of attributes, ${bs}-byte blocks, ${cs}-byte clusters`, async (t) => {
    const img = path.join(work, `x-${bs}-${cs}.img`);
    mkfs(img, bs, cs, 512);
    const rv = await openFsVolume(img);
    const fs = new Ocfs2Fs(rv);
    const root = rv.vol.rootBlkno;
    const owner = { uid: 0, gid: 0 };
    const before = (await fs.statfs()).freeClusters;
    const ino = await fs.mknod(root, Buffer.from('many'), 0o100644, 0, owner);
    const model = new Map<string, Buffer>();
    const N = 400;
    let sawIndexed = false;
    for (let i = 0; i < N; i++) {
      const name = `user.attr-${i}-${'n'.repeat(i % 37)}`;
      const v = bytes(name, SIZES[i % SIZES.length]!);
      await fs.setxattr(ino, Buffer.from(name), v, XATTR_CREATE);
      model.set(name, v);
      if (i === 10 || i === 60) sameMap(t, await readAll(rv.vol, ino), model, `after ${i + 1} sets`);
      if (!sawIndexed) {
        const f = await rv.vol.readInode(ino);
        if (f.inode.xattrLoc) {
          const xb = await rv.vol.readMetaBlock(f.inode.xattrLoc, XATTR_BLOCK_CHECK_OFFSET);
          sawIndexed = decodeXattrBlock(xb, f.inode.xattrLoc, bs).indexed;
        }
      }
    }
    t.ok(sawIndexed, 'the xattr block became an indexed (bucket) block');
    sameMap(t, await readAll(rv.vol, ino), model, 'all attributes read back');
    // Flags.
    t.equal(await code(fs.setxattr(ino, Buffer.from('user.attr-3-nnn'), Buffer.from('x'), XATTR_CREATE)), 'EEXIST');
    t.equal(await code(fs.setxattr(ino, Buffer.from('user.nope'), Buffer.from('x'), XATTR_REPLACE)), 'ENODATA');
    t.equal(await code(fs.removexattr(ino, Buffer.from('user.nope'))), 'ENODATA');
    t.equal(await code(fs.setxattr(ino, Buffer.from('user.toobig'), Buffer.alloc(65537), 0)), 'E2BIG');
    // Replace (sizes change across the local/value-root boundary), remove a third.
    for (let i = 0; i < N; i += 3) {
      const name = `user.attr-${i}-${'n'.repeat(i % 37)}`;
      const v = bytes(`${name}-2`, SIZES[(i + 5) % SIZES.length]!);
      await fs.setxattr(ino, Buffer.from(name), v, XATTR_REPLACE);
      model.set(name, v);
    }
    for (let i = 1; i < N; i += 3) {
      const name = `user.attr-${i}-${'n'.repeat(i % 37)}`;
      await fs.removexattr(ino, Buffer.from(name));
      model.delete(name);
    }
    await fs.setxattr(ino, Buffer.from('trusted.t'), Buffer.from('tv'), 0); model.set('trusted.t', Buffer.from('tv'));
    await fs.setxattr(ino, Buffer.from('security.s'), bytes('sec', 5000), 0); model.set('security.s', bytes('sec', 5000));
    sameMap(t, await readAll(rv.vol, ino), model, 'after replace/remove');

    // Values spread over many extents (every other cluster): value roots grow an extent block.
    const frag = new Ocfs2Fs(fragmenting(rv));
    const fino = await frag.mknod(root, Buffer.from('frag'), 0o100644, 0, owner);
    const fmodel = new Map<string, Buffer>();
    // One fragmented value per xattr header: fsck.ocfs2 1.8.7 keeps the expected depth of one value
    // root's extent block for the next value root of the same header (check_xattr_value shares one
    // extent_info), so two depth-1 value roots side by side draw a false EXTENT_LIST_DEPTH.
    for (let i = 0; i < 6; i++) {
      const v = bytes(`frag${i}`, i === 0 ? 65536 : 100 + i * 700);
      await (i === 0 ? frag : fs).setxattr(fino, Buffer.from(`user.frag${i}`), v, 0);
      fmodel.set(`user.frag${i}`, v);
    }
    sameMap(t, await readAll(rv.vol, fino), fmodel, 'fragmented values');

    // An inode with buckets and value trees, deleted: everything comes back.
    const dino = await fs.mknod(root, Buffer.from('doomed'), 0o100644, 0, owner);
    for (let i = 0; i < 200; i++) await fs.setxattr(dino, Buffer.from(`user.d${i}`), bytes(`d${i}`, SIZES[i % SIZES.length]!), 0);
    await frag.setxattr(dino, Buffer.from('user.fragged'), bytes('ff', 65536), 0);
    await fs.unlink(root, Buffer.from('doomed'), { dir: false });
    await fs.flush();
    await rv.close();
    checkFsck(t, img);

    // A fresh read-only open of ours reads everything back.
    const vol = await Volume.open(img, { readOnly: true });
    sameMap(t, await readAll(vol, ino), model, 'fresh read-only open: many');
    sameMap(t, await readAll(vol, fino), fmodel, 'fresh read-only open: frag');
    await vol.close();
    // debugfs.ocfs2 "xattr -v" lists every entry with its name and value lengths (names are not printed).
    const dbg = sh(`${SBIN} debugfs.ocfs2 -R "xattr -v /many" ${img} 2>&1`);
    const seen = [...dbg.matchAll(/^\s*#\d+\s+(\d+)\s+[01]\s+(\d+)\s+(\d+)\s*$/gm)].map((m) => `${m[1]}:${m[2]}:${m[3]}`).sort();
    const prefixes: Record<string, number> = { 'user.': 1, 'trusted.': 4, 'security.': 5 };
    const want = [...model].map(([n, v]) => {
      const p = Object.keys(prefixes).find((x) => n.startsWith(x))!;
      return `${prefixes[p]}:${n.length - p.length}:${v.length}`;
    }).sort();
    t.same(seen, want, 'debugfs.ocfs2 xattr -v: every entry (type, name length, value length)');
    t.match(dbg, new RegExp(`Extended attributes in total: ${model.size}`), 'debugfs.ocfs2 total');

    // Space: after the two survivors are removed too, the volume is back where it started.
    const rv2 = await openFsVolume(img);
    const fs2 = new Ocfs2Fs(rv2);
    await fs2.unlink(root, Buffer.from('many'), { dir: false });
    await fs2.unlink(root, Buffer.from('frag'), { dir: false });
    const after = (await fs2.statfs()).freeClusters;
    t.equal(after, before, 'every cluster of values and buckets freed');
    await rv2.close();
    t.comment(`many=${ino} frag=${fino} doomed=${dino}`);
    checkFsck(t, img);
  });
}

t.test('64 KiB values in buckets: the kernel\'s xh_name_value_len (fsck.ocfs2 1.8.7 truncates the size to 16 bits)', async (t) => {
  const img = path.join(work, 'x64k.img');
  mkfs(img, 4096, 4096, 256);
  const rv = await openFsVolume(img);
  const fs = new Ocfs2Fs(rv);
  const ino = await fs.mknod(rv.vol.rootBlkno, Buffer.from('big'), 0o100644, 0, { uid: 0, gid: 0 });
  const model = new Map<string, Buffer>();
  for (let i = 0; i < 120; i++) {
    const name = `user.b${i}`;
    // 65536 is where fsck.ocfs2's 16-bit size wraps; 65535 is the control just below it
    const v = bytes(name, i % 10 === 0 ? 65536 : i % 10 === 5 ? 65535 : 30);
    await fs.setxattr(ino, Buffer.from(name), v, 0);
    model.set(name, v);
  }
  await rv.close();
  const vol = await Volume.open(img, { readOnly: true });
  sameMap(t, await readAll(vol, ino), model, 'read back');
  // Per bucket: how many 65536-byte values it holds.
  const f = await vol.readInode(ino);
  const per = new Map<number, number>();
  let below = 0;
  const xb = await vol.readMetaBlock(f.inode.xattrLoc, XATTR_BLOCK_CHECK_OFFSET);
  const tree = decodeXattrBlock(xb, f.inode.xattrLoc, 4096).tree!;
  for (const rec of tree.list.recs) {
    const bucket = await vol.dev.readBlocks(rec.blkno, 1);
    const list = listXattrBucket(bucket, rec.blkno, 4096);
    per.set(rec.blkno, list.items.filter((it) => it.valueSize === 65536).length);
    below += list.items.filter((it) => it.valueSize === 65535).length;
  }
  await vol.close();
  // Who is right: the kernel's namevalue_size() (fs/ocfs2/xattr.c) takes a u64 value length and
  // counts OCFS2_XATTR_ROOT_SIZE (48) for every value outside the bucket; ocfs2-tools'
  // ocfs2_xattr_value_real_size(uint16_t name_len, uint16_t value_len) receives 65536 as 0 and
  // counts nothing.  So fsck.ocfs2 must be short by exactly 48 per 65536-byte value, and by
  // nothing for the 65535-byte ones (the same root, no wrap): any other difference is ours.
  const out = fsck(img).out;
  const unexplained = problems(out).filter((l) => {
    const m = /^\[XATTR_VALUE_LEN_INVALID\] Extended attribute in bucket #(\d+) claims to have the total length (\d+) .* fsck believes it is (\d+),/.exec(l);
    return !m || Number(m[2]) - Number(m[3]) !== 48 * (per.get(Number(m[1])) ?? -1);
  });
  t.same(unexplained, [], 'fsck.ocfs2 reports only the 48 bytes per 64 KiB value root it does not count');
  t.ok([...per.values()].some((n) => n > 0), 'some bucket holds a 64 KiB value');
  t.ok(below > 0, `${below} values of 65535 bytes (no wrap in fsck.ocfs2: counted like ours)`);
  const reported = new Set([...out.matchAll(/\[XATTR_VALUE_LEN_INVALID\] Extended attribute in bucket #(\d+)/g)].map((m) => Number(m[1])));
  t.same([...per].filter(([, n]) => n > 0).map(([b]) => b).sort(), [...reported].sort(), 'fsck.ocfs2 complains about exactly the buckets holding a 65536-byte value');
});

/**
 * The same paths through a real read-write mount, by a separate process
 * making the system calls (python's os.setxattr with XATTR_CREATE /
 * XATTR_REPLACE, os.getxattr, os.listxattr): hundreds of attributes (buckets),
 * 64 KiB values (value trees), the flags' errors; then a remount reads them
 * back, and fsck.ocfs2 and debugfs.ocfs2 judge the volume.
 */
t.test('through a real mount: buckets, 64 KiB values, CREATE/REPLACE', async (t) => {
  const img = path.join(work, 'mounted.img');
  mkfs(img, 4096, 4096, 256);
  const mnt = path.join(work, 'mnt');
  sh(`mkdir -p ${mnt}`);
  let d: RwDaemon | undefined = await startRwDaemon(img, mnt);
  t.teardown(async () => { if (d) await d.kill(); });
  const py = (code: string): { status: number | null; out: string } => {
    const r = spawnSync('timeout', ['300', 'python3', '-c', code, mnt], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const VALUE = `
import hashlib
def value(name, n):
    out = b''
    h = hashlib.sha256(name.encode()).digest()
    while len(out) < n:
        out += h; h = hashlib.sha256(h).digest()
    return out[:n]
`;
  const w = py(`${VALUE}
import os, sys, errno
m = sys.argv[1]
open(m + '/many', 'w').close(); open(m + '/big', 'w').close()
for i in range(300):
    os.setxattr(m + '/many', 'user.attr%03d' % i, value('m%d' % i, 20 + i % 60), os.XATTR_CREATE)
for i in range(3):
    os.setxattr(m + '/big', 'user.big%d' % i, value('b%d' % i, 65536), os.XATTR_CREATE)
def err(f):
    try: f(); return 'ok'
    except OSError as e: return errno.errorcode[e.errno]
print('create-existing', err(lambda: os.setxattr(m + '/many', 'user.attr007', b'x', os.XATTR_CREATE)))
print('replace-missing', err(lambda: os.setxattr(m + '/many', 'user.nope', b'x', os.XATTR_REPLACE)))
print('replace-existing', err(lambda: os.setxattr(m + '/many', 'user.attr008', value('r8', 65000), os.XATTR_REPLACE)))
print('remove', err(lambda: os.removexattr(m + '/many', 'user.attr009')))
print('get-removed', err(lambda: os.getxattr(m + '/many', 'user.attr009')))
print('too-big', err(lambda: os.setxattr(m + '/big', 'user.huge', b'z' * 65537)))
`);
  t.equal(w.status, 0, `the writing process ran: ${w.out.slice(-500)}`);
  t.match(w.out, /create-existing EEXIST/, 'XATTR_CREATE on an existing name: EEXIST');
  t.match(w.out, /replace-missing ENODATA/, 'XATTR_REPLACE on a missing name: ENODATA');
  t.match(w.out, /replace-existing ok/, 'XATTR_REPLACE of an existing name (now a value tree)');
  t.match(w.out, /remove ok/);
  t.match(w.out, /get-removed ENODATA/, 'a removed name is gone');
  t.match(w.out, /too-big E2BIG/, 'a value past 64 KiB: E2BIG (the VFS limit)');
  t.equal(await d.unmount(), 0, 'clean unmount');
  d = undefined;
  checkFsck(t, img);
  const dx = spawnSync('timeout', ['60', 'debugfs.ocfs2', '-R', 'xattr /many', img], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` } });
  t.match(dx.stdout, /Extended Attributes in bucket #/, 'debugfs.ocfs2: /many keeps its attributes in buckets');
  const inBuckets = [...dx.stdout.matchAll(/Extended Attributes in bucket #\d+: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const inline = Number(/Extended Attributes inline: (\d+)/.exec(dx.stdout)?.[1] ?? 0);
  t.equal(inBuckets + inline, 299, `debugfs.ocfs2 counts 299 attributes (${inline} in the inode, ${inBuckets} in buckets)`);

  // remount: everything reads back from disk, in another process
  d = await startRwDaemon(img, mnt);
  const r = py(`${VALUE}
import os, sys
m = sys.argv[1]
bad = []
names = set(os.listxattr(m + '/many'))
want = set('user.attr%03d' % i for i in range(300) if i != 9)
if names != want: bad.append('names %d vs %d' % (len(names), len(want)))
for i in range(300):
    if i == 9: continue
    n = 'user.attr%03d' % i
    v = value('r8', 65000) if i == 8 else value('m%d' % i, 20 + i % 60)
    if os.getxattr(m + '/many', n) != v: bad.append(n)
for i in range(3):
    if os.getxattr(m + '/big', 'user.big%d' % i) != value('b%d' % i, 65536): bad.append('big%d' % i)
print('bad', bad)
`);
  t.equal(r.status, 0, r.out.slice(-500));
  t.match(r.out, /^bad \[\]$/m, 'every name and value reads back after a remount');
  t.equal(await d.unmount(), 0, 'clean unmount');
  d = undefined;
  checkFsck(t, img);
});
