/**
 * Seeded corruption fuzz (issue 16): damage one metadata block of a
 * reference image (an inode, extent block, directory block, dx root/leaf,
 * xattr block or global bitmap group belonging to a randomly chosen path),
 * then
 *  - fsck.ocfs2 -fn and our `check -fn` on the copy: every problem code fsck
 *    reports (beyond what it reports on the pristine image) must be in ours;
 *  - mount it read-only and walk the chosen path plus a sample of others
 *    from another process: no crash, no stack trace in the log, no request
 *    slower than a few seconds, no read that succeeds with bytes other than
 *    the manifest's (where the damage is one a reader can detect);
 *  - every third round (local-4k), mount it read-write, run a small workload,
 *    unmount: fsck.ocfs2 -fn must not find more problems than before.
 * FUZZ_ROUNDS (default 8) rounds per image, OCFS2_TEST_SEED (default 16); `make
 * soak` runs hundreds.  Needs the CLI built.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { mountRo, runCli, tmpDir, sh } from './lib/mount';
import { copyOfImage, pristineImage, readManifest, REPO_ROOT, type ReferenceImage, type ManifestRow } from './lib/refimages';
import { fsckOcfs2, startRwDaemon } from './lib/rwdaemon';
import { Volume } from '../src/libocfs2/volume';
import { lookupName } from '../src/libocfs2/directory';
import { allLeafExtents } from '../src/libocfs2/extentmap';
import { inodeExtentList, DinodeHeader } from '../src/libocfs2/structs/dinode';
import { decodeDxRoot, DX_ROOT_CHECK_OFFSET, DX_LEAF_CHECK_OFFSET } from '../src/libocfs2/structs/dxdir';
import { XATTR_BLOCK_CHECK_OFFSET } from '../src/libocfs2/structs/xattr';
import { dirBlockCheckOffset } from '../src/libocfs2/structs/dir';
import { CHECK_OFFSET, updateBlockCheck } from '../src/libocfs2/blockcheck';
import { OCFS2_INDEXED_DIR_FL } from '../src/libocfs2/constants';
import type { InodeBlock } from '../src/libocfs2/volume';
import { rng } from './alloc-helpers';
import { testSeed } from './lib/judges';

const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 8);
const SEED = testSeed(t, 16);
const WALKER = path.join(REPO_ROOT, 'dist', 'test', 'lib', 'fuzzwalk.js');
const SLOW_MS = 5000;
const work = tmpDir('fuzz');
t.teardown(() => { sh(`rm -rf ${work}`); });

interface MetaBlock { blkno: number; kind: string; checkOffset: number | null }

/** The metadata blocks of `p` (inode, extent blocks, dir blocks, dx blocks, xattr block). */
async function metadataOf(vol: Volume, p: string): Promise<MetaBlock[]> {
  let cur: InodeBlock = await vol.readInode(vol.rootBlkno);
  for (const part of p.split('/').filter(Boolean)) {
    const e = await lookupName(vol, cur, Buffer.from(part, 'latin1'));
    if (!e) return [];
    cur = await vol.readInode(e.inode);
  }
  const out: MetaBlock[] = [{ blkno: cur.inode.blkno, kind: 'inode', checkOffset: CHECK_OFFSET.dinode }];
  const h = DinodeHeader.decode(cur.buf, 0);
  const isDir = (h.i_mode & 0o170000) === 0o040000;
  if (!(h.i_dyn_features & 0x1) && !((h.i_mode & 0o170000) === 0o120000 && h.i_clusters === 0)) {
    const list = inodeExtentList(cur.buf, cur.inode.blkno);
    const ebs: number[] = [];
    const walk = async (l: typeof list): Promise<void> => {
      if (l.treeDepth === 0) return;
      for (const r of l.recs) { ebs.push(r.blkno); await walk((await vol.readExtentBlock(r.blkno)).list); }
    };
    await walk(list);
    for (const b of ebs) out.push({ blkno: b, kind: 'extent block', checkOffset: CHECK_OFFSET.extentBlock });
    if (isDir) {
      const leaves = await allLeafExtents(vol, list, cur.inode.blkno);
      const blocks = Math.floor(h.i_size / vol.blockSize);
      for (let lb = 0; lb < Math.min(blocks, 8); lb++) {
        const cpos = Math.floor(lb / vol.clusterBlocks);
        const l = leaves.find((x) => x.cpos <= cpos && cpos < x.cpos + x.clusters);
        if (l) out.push({ blkno: l.blkno + (lb - l.cpos * vol.clusterBlocks), kind: 'dir block', checkOffset: vol.metaEcc ? dirBlockCheckOffset(vol.blockSize) : null });
      }
    }
  }
  if (h.i_xattr_loc) out.push({ blkno: h.i_xattr_loc, kind: 'xattr block', checkOffset: XATTR_BLOCK_CHECK_OFFSET });
  if ((h.i_dyn_features & OCFS2_INDEXED_DIR_FL) && h.i_dx_root) {
    out.push({ blkno: h.i_dx_root, kind: 'dx root', checkOffset: DX_ROOT_CHECK_OFFSET });
    const root = decodeDxRoot(await vol.readMetaBlock(h.i_dx_root, DX_ROOT_CHECK_OFFSET), h.i_dx_root);
    if (root.list) {
      for (const l of (await allLeafExtents(vol, root.list, h.i_dx_root, { hashed: true })).slice(0, 4)) {
        out.push({ blkno: l.blkno, kind: 'dx leaf', checkOffset: DX_LEAF_CHECK_OFFSET });
      }
    }
  }
  return out;
}

function damage(img: string, bs: number, mb: MetaBlock, rnd: () => number, reEcc: boolean): string {
  const fd = fs.openSync(img, 'r+');
  try {
    const buf = Buffer.alloc(bs);
    fs.readSync(fd, buf, 0, bs, mb.blkno * bs);
    const kind = Math.floor(rnd() * 4);
    const hdr = Math.min(bs, 512);
    let what: string;
    if (kind === 0) {
      const bit = Math.floor(rnd() * bs * 8);
      buf[bit >> 3] = buf[bit >> 3]! ^ (1 << (bit & 7));
      what = `bit ${bit} flipped`;
    } else if (kind === 1) {
      const n = 1 + Math.floor(rnd() * 8); const off = Math.floor(rnd() * (hdr - n));
      for (let i = 0; i < n; i++) buf[off + i] = Math.floor(rnd() * 256);
      what = `${n} random bytes at ${off}`;
    } else if (kind === 2) {
      const off = 4 * Math.floor(rnd() * (hdr / 4 - 1));
      const v = [0, 0xffffffff, 0x7fffffff, Math.floor(rnd() * 2 ** 32)][Math.floor(rnd() * 4)]!;
      buf.writeUInt32LE(v >>> 0, off);
      what = `u32 at ${off} = 0x${(v >>> 0).toString(16)}`;
    } else {
      const n = 16 + Math.floor(rnd() * 48); const off = Math.floor(rnd() * (bs - n));
      buf.fill(0, off, off + n);
      what = `${n} bytes zeroed at ${off}`;
    }
    if (reEcc && mb.checkOffset !== null) updateBlockCheck(buf, mb.checkOffset);
    fs.writeSync(fd, buf, 0, bs, mb.blkno * bs);
    return `${mb.kind} ${mb.blkno}: ${what}${reEcc && mb.checkOffset !== null ? ' (metaecc recomputed)' : ''}`;
  } finally { fs.closeSync(fd); }
}

const problemLines = (out: string): string[] => out.split('\n').filter((l) => /^\[[A-Z0-9_]+\]/.test(l));
const codesOf = (out: string): Set<string> => new Set(problemLines(out).map((l) => /^\[([A-Z0-9_]+)\]/.exec(l)![1]!));
/** Problems only a whole-volume cross-reference finds (a reader of one object cannot). */
const CROSS_REFERENCE = new Set(['CLUSTER_ALLOC_BIT', 'DUP_CLUSTERS', 'DUP_CLUSTERS_CLONE', 'DUP_CLUSTERS_SYSFILE_CLONE',
  'INODE_COUNT', 'INODE_NOT_CONNECTED', 'INODE_SPARSE_SIZE', 'GROUP_FREE_BITS', 'CHAIN_BITS', 'CHAIN_COUNT',
  'INODE_ALLOC_REPAIR', 'DIR_NOT_CONNECTED', 'DIR_PARENT_DUP', 'DIRENT_INODE_FREE', 'DIR_DOTDOT']);

interface Totals { rounds: number; roundsWithFsckProblems: number; fsckCodes: number; matched: number; missing: string[]; wrongBytesUndetectable: number; eio: number; rwRounds: number }

const IMAGES: ReferenceImage[] = ['local-4k', 'cluster-1k-64k-max'];
const totals: Totals = { rounds: 0, roundsWithFsckProblems: 0, fsckCodes: 0, matched: 0, missing: [], wrongBytesUndetectable: 0, eio: 0, rwRounds: 0 };

for (const name of IMAGES) {
  t.test(`${name}: ${ROUNDS} seeded rounds (seed ${SEED})`, async (t) => {
    const manifest = readManifest(name);
    const byPath = new Map(manifest.map((r) => [r.path, r]));
    // On a private copy: fsck.ocfs2 stats every mount of the image it checks, and the shared pristine
    // copy may be mounted by another test.
    const baseDir = fs.mkdtempSync(path.join(work, `${name}-base-`));
    const baseline = codesOf(fsckOcfs2(copyOfImage(name, baseDir)).out);
    sh(`rm -rf ${baseDir}`);
    const vol = await Volume.open(pristineImage(name), { readOnly: true });
    const bs = vol.blockSize;
    const metaEcc = vol.metaEcc;
    const rnd = rng(SEED * 1000 + IMAGES.indexOf(name));
    const candidates = manifest.filter((r) => r.path !== '/' && 'fdl'.includes(r.type));
    const plans: Array<{ target: ManifestRow; mb: MetaBlock; reEcc: boolean }> = [];
    try {
      while (plans.length < ROUNDS) {
        // Directories and big/fragmented files have the most metadata: weigh them up.
        const pool = rnd() < 0.5 ? candidates.filter((r) => r.type === 'd' || r.size > 65536 || r.type === 'l') : candidates;
        const target = pool[Math.floor(rnd() * pool.length)]!;
        const blocks = await metadataOf(vol, target.path);
        if (blocks.length === 0) continue;
        const mb = blocks[Math.floor(rnd() * blocks.length)]!;
        plans.push({ target, mb, reEcc: metaEcc && rnd() < 0.5 });
      }
    } finally { await vol.close(); }

    for (let i = 0; i < plans.length; i++) {
      const { target, mb, reEcc } = plans[i]!;
      const dir = path.join(work, `${name}-${i}`);
      fs.mkdirSync(dir);
      const img = copyOfImage(name, dir);
      const what = damage(img, bs, mb, rnd, reEcc);
      const label = `round ${i}: ${target.path}, ${what}`;
      totals.rounds++;

      // check vs fsck
      const f = fsckOcfs2(img);
      const fsckNew = [...codesOf(f.out)].filter((c) => !baseline.has(c));
      const ours = runCli(['check', '-fn', img], 600);
      t.notMatch(ours.stderr, /\n\s+at /, `${label}: check: no stack trace`);
      const ourCodes = codesOf(ours.stdout);
      if (fsckNew.length) totals.roundsWithFsckProblems++;
      for (const c of fsckNew) {
        totals.fsckCodes++;
        if (ourCodes.has(c)) totals.matched++; else totals.missing.push(`${label}: ${c}`);
      }

      // read-only mount, walk the target, its directory and a sample from another process
      const sample = new Set<string>([target.path, path.posix.dirname(target.path)]);
      for (const r of manifest) if (path.posix.dirname(r.path) === path.posix.dirname(target.path) && sample.size < 40) sample.add(r.path);
      while (sample.size < 60) sample.add(candidates[Math.floor(rnd() * candidates.length)]!.path);
      const listFile = path.join(dir, 'paths');
      fs.writeFileSync(listFile, [...sample].map((p) => p.slice(1)).join('\n'));
      let m;
      try { m = mountRo(img); } catch (e) {
        t.notMatch(String(e), /\n\s+at /, `${label}: refused at mount without a stack trace`);
        continue;
      }
      try {
        const w = spawnSync('timeout', ['120', process.execPath, WALKER, m.mountpoint, listFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
        t.equal(w.status, 0, `${label}: walker finished (${w.stderr.slice(0, 200)})`);
        if (w.status === 0) {
          const res = JSON.parse(w.stdout) as { rows: Array<{ path: string; ok: boolean; err?: string; md5?: string; target?: string }>; slowest: number; slowestOp: string };
          t.ok(res.slowest < SLOW_MS, `${label}: slowest request ${res.slowest} ms (${res.slowestOp})`);
          for (const row of res.rows) {
            const want = byPath.get(`/${row.path}`);
            if (!row.ok) { totals.eio++; continue; }
            const wrong = want && ((row.md5 !== undefined && want.md5 !== '-' && row.md5 !== want.md5) || (row.target !== undefined && row.target !== want.target));
            if (!wrong) continue;
            // Bytes a reader cannot know are wrong: the damage is in data itself (inline data, a symlink target)
            // or only a volume-wide cross-reference shows it, and no metaecc stood in the way.
            const detectable = (metaEcc && !reEcc) || fsckNew.some((c) => !CROSS_REFERENCE.has(c));
            if (detectable) t.fail(`${label}: /${row.path} read succeeded with wrong bytes (fsck: ${fsckNew.join(',') || 'clean'})`);
            else totals.wrongBytesUndetectable++;
          }
        }
        const log = fs.existsSync(`${m.mountpoint}.log`) ? fs.readFileSync(`${m.mountpoint}.log`, 'utf8') : '';
        t.notMatch(log, /\n\s+at |RangeError|TypeError|ERR_OUT_OF_RANGE/, `${label}: no stack trace or raw error in the daemon log`);
      } finally { m.unmount(); }

      // read-write: a small workload must not add damage
      if (name === 'local-4k' && i % 3 === 0) {
        totals.rwRounds++;
        const before = problemLines(fsckOcfs2(img).out).length;
        const mnt = path.join(dir, 'rw');
        fs.mkdirSync(mnt);
        let d;
        try { d = await startRwDaemon(img, mnt, [], 120000); } catch (e) {
          t.notMatch(String(e), /\n\s+at /, `${label}: rw mount refused without a stack trace`);
          continue;
        }
        const dirOf = path.join(mnt, path.posix.dirname(target.path));
        spawnSync('timeout', ['60', 'bash', '-c', [
          `mkdir -p ${mnt}/fuzz-new && dd if=/dev/urandom of=${mnt}/fuzz-new/a bs=64k count=16 2>/dev/null`,
          `touch ${dirOf}/fuzz-created; rm -f ${dirOf}/fuzz-created`,
          target.type === 'f' ? `dd if=/dev/zero of=${mnt}${target.path} bs=4k count=1 seek=1 conv=notrunc 2>/dev/null` : 'true',
          `rm -rf ${mnt}/fuzz-new`, 'sync',
        ].join('; ')], { stdio: 'ignore' });
        const rc = await d.unmount();
        t.equal(rc, 0, `${label}: rw daemon exits cleanly`);
        t.notMatch(d.log(), /\n\s+at |RangeError|TypeError/, `${label}: no stack trace in the rw log`);
        const after = fsckOcfs2(img);
        t.ok(problemLines(after.out).length <= before, `${label}: fsck after the rw workload finds ${problemLines(after.out).length} problems, ${before} before\n${problemLines(after.out).join('\n')}`);
      }
      sh(`rm -rf ${dir}`);
    }
  });
}

t.test('check reports every problem fsck.ocfs2 reports', async (t) => {
  t.comment(`rounds ${totals.rounds}, with fsck problems ${totals.roundsWithFsckProblems}, fsck codes ${totals.fsckCodes}, matched by check ${totals.matched}, rw rounds ${totals.rwRounds}, EIO answers ${totals.eio}, undetectable wrong bytes ${totals.wrongBytesUndetectable}`);
  t.same(totals.missing, [], `check missed ${totals.missing.length} of ${totals.fsckCodes} fsck problem codes`);
});
