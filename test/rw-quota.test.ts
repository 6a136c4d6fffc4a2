/**
 * Quotas through the real mount, on `mkfs.ocfs2 --fs-feature-level=max-features`
 * volumes (usrquota + grpquota, metaecc, refcount...):
 *  - a workload by several uids/gids (child processes under setpriv) —
 *    mkdir, files of many sizes, appends, truncates, unlinks, hard links,
 *    symlinks, fallocate, chown/chgrp — then `ocfs2-fuse quota report --json`
 *    equals a recount of what is on the volume (find through a fresh
 *    read-only mount: st_uid/st_gid/st_blocks per inode, as
 *    ocfs2_compute_quota_usage counts), fsck.ocfs2 -fn clean;
 *  - limits: inode and space hard limits give EDQUOT with nothing
 *    half-written (file content = what the successful writes wrote, usage
 *    within the limit, recount exact); chown onto a full id is refused; a
 *    soft limit starts a grace period and allocation fails once it expired;
 *  - SIGKILL of the daemon mid-workload: after replay the usage is exact;
 *  - a crashed node's local quota file (entries in a chunk, OLQF_CLEAN off,
 *    its journal dirty) is merged into the global file at mount.
 * Needs the CLI built (make build) and root (setpriv, chown).
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir, sh, runCli, mountRo } from './lib/mount';
import { KERNEL_HARNESS_DIR, kernelHarnessMissing, requireJudge, rootMissing, toolsMissing } from './lib/judges';
import { startRwDaemon, mkfsOcfs2, fsckOcfs2, type RwDaemon } from './lib/rwdaemon';
import { Volume } from '../src/libocfs2/volume';
import { DirectTransactionManager } from '../src/libocfs2/txn';
import { allLeafExtents } from '../src/libocfs2/extentmap';
import { DinodeHeader, inodeExtentList } from '../src/libocfs2/structs/dinode';
import { CHECK_OFFSET } from '../src/libocfs2/blockcheck';
import {
  LocalDiskChunk, LocalDiskDqblk, LocalDiskDqinfo, QUOTA_INFO_OFFSET, localDqblkLocation, localQuotaGeometry, quotaCheckOffset,
} from '../src/libocfs2/structs/quota';
import { JOURNAL_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE, systemFileName } from '../src/libocfs2/sysfiles';
import { setJournalDinodeFlags } from '../src/libocfs2/journal';
import { readLocalQuota, USRQUOTA } from '../src/libocfs2/quota';

const work = tmpDir('rwquota');
// The users of the workload reach the mount point below it.
fs.chmodSync(work, 0o755);
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
let daemon: RwDaemon | undefined;
t.teardown(async () => {
  if (daemon) await daemon.kill();
  sh(`rm -rf ${work}`);
});

const MAX = '--fs-feature-level=max-features';

/** Run a shell snippet as uid/gid (no supplementary groups) in a child process. */
function asUser(uid: number, gid: number, script: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['120', 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'bash', '-c', script], { encoding: 'utf8', cwd: mnt });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

type Usage = Map<string, { space: bigint; inodes: bigint }>;

/** ocfs2_compute_quota_usage over what a fresh read-only mount shows: one count per inode (hard links once). */
function recount(img: string): { user: Usage; group: Usage } {
  const m = mountRo(img);
  try {
    const out = sh(`find ${m.mountpoint} -printf '%i %U %G %b\\n'`);
    const seen = new Set<string>();
    const user: Usage = new Map(); const group: Usage = new Map();
    for (const line of out.trim().split('\n')) {
      const [ino, uid, gid, blocks] = line.split(' ');
      if (seen.has(ino!)) continue;
      seen.add(ino!);
      for (const [map, id] of [[user, uid!], [group, gid!]] as const) {
        const u = map.get(id) ?? { space: 0n, inodes: 0n };
        u.space += BigInt(blocks!) * 512n; u.inodes += 1n;
        map.set(id, u);
      }
    }
    return { user, group };
  } finally { m.unmount(); }
}

interface ReportDquot { id: number; spaceBytes: string; inodes: string; spaceHardBytes: string; spaceGraceUntil: number; inodeHard: string }
function report(img: string): { user: ReportDquot[]; group: ReportDquot[] } {
  const r = runCli(['quota', 'report', img, '--json']);
  if (r.status !== 0) throw new Error(`quota report: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { user: { dquots: ReportDquot[] }; group: { dquots: ReportDquot[] } };
  return { user: j.user.dquots, group: j.group.dquots };
}

/** Report usage (ids with something in use) as the recount's shape; id 0 relative to the mkfs baseline. */
function usageOf(r: ReportDquot[]): Usage {
  const m: Usage = new Map();
  for (const q of r) if (q.inodes !== '0' || q.spaceBytes !== '0') m.set(String(q.id), { space: BigInt(q.spaceBytes), inodes: BigInt(q.inodes) });
  return m;
}

/**
 * The report equals the recount for every id; id 0 up to mkfs.ocfs2's own
 * offset (it counts usage before it makes lost+found), measured on the fresh volume.
 */
function sameUsage(t: Test, img: string, base: { user: Usage; group: Usage }, what: string): void {
  const rc = recount(img);
  const rep = report(img);
  for (const kind of ['user', 'group'] as const) {
    const want = new Map(rc[kind]);
    const b = base[kind].get('0');
    const z = want.get('0');
    if (b && z) want.set('0', { space: z.space - b.space, inodes: z.inodes - b.inodes });
    const fmt = (u: Usage) => [...u].filter(([, v]) => v.space !== 0n || v.inodes !== 0n).sort((x, y) => Number(x[0]) - Number(y[0])).map(([id, v]) => `${id}:${v.space}/${v.inodes}`).join(' ');
    t.equal(fmt(usageOf(rep[kind])), fmt(want), `${what}: ${kind} quota usage = recount`);
  }
}

/** Offset of mkfs's usage for id 0 against the recount (report - recount per id 0), to subtract later. */
function baseline(img: string): { user: Usage; group: Usage } {
  const rc = recount(img);
  const rep = report(img);
  const out = { user: new Map(), group: new Map() } as { user: Usage; group: Usage };
  for (const kind of ['user', 'group'] as const) {
    const r0 = usageOf(rep[kind]).get('0') ?? { space: 0n, inodes: 0n };
    const c0 = rc[kind].get('0') ?? { space: 0n, inodes: 0n };
    out[kind].set('0', { space: c0.space - r0.space, inodes: c0.inodes - r0.inodes });
  }
  return out;
}

function fsckProblems(img: string): string[] {
  return fsckOcfs2(img).out.split('\n').filter((l) => /^\[[A-Z_]+\]/.test(l));
}

/** fsck.ocfs2 -fn clean, or (`baseline`) with no problem beyond those of the fresh mkfs.ocfs2 volume. */
function fsckClean(t: Test, img: string, what: string, baseline?: string[]): void {
  const f = fsckOcfs2(img);
  if (!baseline) { t.ok(f.clean, `${what}: fsck.ocfs2 -fn clean`, { out: f.clean ? undefined : f.out }); return; }
  t.equal(f.status, 0, `${what}: fsck.ocfs2 -fn exit status`, { out: f.out });
  t.same(fsckProblems(img).filter((l) => !baseline.includes(l)), [], `${what}: fsck.ocfs2 -fn finds nothing new`, { out: f.out });
}

const WORKLOAD = (u: number) => `set -e
mkdir -p pub/u${u}/sub; cd pub/u${u}
for i in 1 2 3 4 5 6; do head -c $((i * 37000 + ${u})) /dev/urandom > f$i; done
echo small > tiny; ln -s /nowhere/at/all/${'x'.repeat(200)} longlink; ln -s t short; ln f1 hard1
head -c 300000 /dev/urandom >> f2; truncate -s 5000 f3; truncate -s 900000 f4; rm f5
fallocate -l 200000 falloc; fallocate -p -o 4096 -l 8192 f6
for i in $(seq 1 20); do echo $i > sub/n$i; done; rm sub/n1 sub/n2; mkdir sub/d; rmdir sub/d`;

const userJudges = (): string | null => rootMissing() ?? toolsMissing('setpriv', 'fsck.ocfs2', 'debugfs.ocfs2', 'fusermount3');

t.test('workload by several uids/gids: report = recount, fsck clean; SIGKILL then replay keeps usage exact', async (t) => {
  if (!requireJudge(t, userJudges())) return;
  const img = path.join(work, 'w.img');
  mkfsOcfs2(img, 400, `-b 4096 -C 4096 ${MAX}`);
  const base = baseline(img);
  daemon = await startRwDaemon(img, mnt);
  sh(`mkdir ${mnt}/pub && chmod 1777 ${mnt}/pub`);
  for (const [u, g] of [[1001, 2001], [1002, 2001], [1003, 2003]] as const) {
    const r = asUser(u, g, WORKLOAD(u));
    t.equal(r.status, 0, `workload of uid ${u} gid ${g}`, { out: r.out });
  }
  // chown/chgrp move usage between ids (root does it, as chown(1) would).
  sh(`chown 1002 ${mnt}/pub/u1001/f2 && chgrp 2009 ${mnt}/pub/u1003/f4 && chown -R 1005:2005 ${mnt}/pub/u1002/sub`);
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  sameUsage(t, img, base, 'after the workload');
  fsckClean(t, img, 'after the workload');

  // Crash: kill the daemon while uids write, replay at the next mount.
  daemon = await startRwDaemon(img, mnt);
  const child = spawnSync('bash', ['-c', `cd ${mnt}/pub && setpriv --reuid=1006 --regid=2006 --clear-groups bash -c 'mkdir c && for i in $(seq 1 40); do head -c $((i * 3000)) /dev/urandom > c/f$i; done; sync c/f40' && rm -f u1001/f6`], { encoding: 'utf8' });
  t.equal(child.status, 0, 'writes before the crash', { out: child.stderr });
  await daemon.kill();
  daemon = await startRwDaemon(img, mnt);
  t.match(daemon.log(), /replayed the journal/, 'the journal was replayed');
  t.equal(await daemon.unmount(), 0, 'clean unmount after replay');
  daemon = undefined;
  sameUsage(t, img, base, 'after SIGKILL and replay');
  fsckClean(t, img, 'after SIGKILL and replay');
});

t.test('1 KiB blocks, 64 KiB clusters: a depth-5 tree with many leaves (200 ids, 5 entries a leaf)', async (t) => {
  if (!requireJudge(t, userJudges())) return;
  const img = path.join(work, 'm.img');
  mkfsOcfs2(img, 400, `-b 1024 -C 65536 ${MAX}`);
  const base = baseline(img);
  // mkfs.ocfs2 1.8.7 leaves the system directory unindexed at 1 KiB blocks (DX_TREE_MISSING on the fresh volume).
  const fresh = fsckProblems(img);
  daemon = await startRwDaemon(img, mnt);
  // Ids far apart too, so that upper tree levels branch (126 references a block at 1 KiB).
  // Ten files a directory: the directories stay inline (a 200-entry directory at 1 KiB blocks is left to the dir tests).
  sh(`mkdir ${mnt}/m && cd ${mnt}/m && for i in $(seq 1 200); do d=d$((i / 10)); mkdir -p $d; u=$((i * 7919 % 100000 + i * 16000000)); echo $i > $d/f$i; chown $u:$((u + 1)) $d/f$i; done`
    + ` && head -c 300000 /dev/urandom > big && chown 16000000 big && rm d0/f3 d5/f50 d5/f51 d5/f52 d5/f53 d5/f54 && chown 77 d0/f7`);
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  sameUsage(t, img, base, '200 ids');
  fsckClean(t, img, '200 ids', fresh);
  const r = runCli(['check', '-n', img]);
  t.equal(r.status, 0, 'our check -n clean too', { out: r.stdout.slice(-2000) });
});

t.test('hard limits give EDQUOT with nothing half-written; chown onto a full id refused; soft limit and grace', async (t) => {
  if (!requireJudge(t, userJudges())) return;
  const img = path.join(work, 'l.img');
  mkfsOcfs2(img, 300, `-b 4096 -C 4096 ${MAX}`);
  const base = baseline(img);
  let r = runCli(['quota', 'set', img, '-u', '1011', '--bhard', '1M', '--ihard', '8', '--json']);
  t.equal(r.status, 0, 'quota set (user 1011)', { err: r.stderr });
  r = runCli(['quota', 'set', img, '-g', '2012', '--bsoft', '100K', '--json']);
  t.equal(r.status, 0, 'quota set (group 2012 soft)', { err: r.stderr });
  r = runCli(['quota', 'set', img, '-g', '--block-grace', '3']);
  t.equal(r.status, 0, 'quota set (group block grace)', { err: r.stderr });
  const got = JSON.parse(runCli(['quota', 'get', img, '-u', '1011', '--json']).stdout) as { spaceHardBytes: string; inodeHard: string };
  t.same([got.spaceHardBytes, got.inodeHard], [String(1024 * 1024), '8'], 'quota get shows the limits');

  daemon = await startRwDaemon(img, mnt);
  sh(`mkdir ${mnt}/pub && chmod 1777 ${mnt}/pub`);
  // Space: a 3 MiB write stops at the limit; the file holds exactly what was written.
  sh(`head -c 3145728 /dev/urandom > ${work}/src.bin && chmod 644 ${work}/src.bin`);
  const w = asUser(1011, 1011, `dd if=${work}/src.bin of=pub/big bs=64k 2>&1; echo "rc=$?"`);
  t.match(w.out, /Disk quota exceeded/, 'dd gets EDQUOT');
  const size = fs.statSync(path.join(mnt, 'pub/big')).size;
  t.ok(size > 0 && size <= 1024 * 1024, `the file stopped at the limit (${size} bytes)`);
  const src = fs.readFileSync(path.join(work, 'src.bin'));
  const inFile = fs.readFileSync(path.join(mnt, 'pub/big'));
  t.ok(inFile.equals(src.subarray(0, size)), 'its content is exactly the written prefix');
  // Inodes: 8 in all for uid 1011 (big is one).
  const c = asUser(1011, 1011, 'for i in $(seq 1 12); do : > pub/n$i || break; done');
  t.match(c.out, /Disk quota exceeded/, 'creating past the inode limit gets EDQUOT');
  t.equal(fs.readdirSync(path.join(mnt, 'pub')).filter((n) => /^n\d+$/.test(n)).length, 7, 'exactly 7 more inodes were created (8 in all)');
  // chown of another file onto the full uid: refused, owner unchanged.
  sh(`head -c 200000 /dev/urandom > ${mnt}/pub/other`);
  const ch = spawnSync('chown', ['1011', path.join(mnt, 'pub/other')], { encoding: 'utf8' });
  t.not(ch.status, 0, 'chown onto the full uid fails');
  t.match(ch.stderr, /Disk quota exceeded/, 'with EDQUOT');
  t.equal(fs.statSync(path.join(mnt, 'pub/other')).uid, 0, 'owner unchanged');
  // Soft limit: over it within the grace period works and starts the grace period...
  const s1 = asUser(1012, 2012, 'head -c 200000 /dev/urandom > pub/soft1 && echo ok');
  t.match(s1.out, /ok/, 'writing over the soft limit within grace works');
  await daemon.unmount();
  daemon = undefined;
  const g = report(img).group.find((q) => q.id === 2012);
  t.ok(g && g.spaceGraceUntil > 0, 'a grace deadline is set', { g });
  // ... and once it has passed, allocation fails.
  while (Date.now() / 1000 < (g?.spaceGraceUntil ?? 0) + 1) await new Promise((res) => setTimeout(res, 250));
  daemon = await startRwDaemon(img, mnt);
  const s2 = asUser(1012, 2012, '{ head -c 50000 /dev/urandom > pub/soft2; } 2>&1; echo rc=$?');
  t.match(s2.out, /Disk quota exceeded/, 'allocation after the grace period gets EDQUOT');
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  const u = report(img).user.find((q) => q.id === 1011);
  t.ok(u && BigInt(u.spaceBytes) <= 1024n * 1024n && u.inodes === '8', 'uid 1011 within its limits', { u });
  sameUsage(t, img, base, 'after the limit tests');
  fsckClean(t, img, 'after the limit tests');
});

t.test('a crashed slot\'s local quota file is merged into the global file at mount', async (t) => {
  if (!requireJudge(t, userJudges())) return;
  const img = path.join(work, 'r.img');
  // 16 KiB clusters: the local file's cluster has room for a block of entries past its two blocks.
  mkfsOcfs2(img, 300, `-b 4096 -C 16384 ${MAX}`);
  const before = report(img).user;
  // What a node that died with quota in use leaves (quota_local.c): OLQF_CLEAN off, chunk 0
  // with two entries in its bitmap, their blocks of changes, and its journal still dirty.
  const vol = await Volume.open(img, { readOnly: false });
  const g = localQuotaGeometry(vol.blockSize);
  const co = quotaCheckOffset(vol.blockSize);
  const fileIno = vol.systemFile(systemFileName(LOCAL_USER_QUOTA_SYSTEM_INODE, 1));
  const ino = await vol.readInode(fileIno);
  const ext = (await allLeafExtents(vol, inodeExtentList(ino.buf, fileIno), fileIno))[0]!;
  t.ok(ext.clusters * vol.clusterBlocks >= 3, 'the local file has a third block allocated');
  const tm = new DirectTransactionManager(vol);
  await tm.run(async (tx) => {
    const b0 = Buffer.from(await vol.readMetaBlock(ext.blkno, co));
    LocalDiskDqinfo.encode({ dqi_flags: 0, dqi_chunks: 1, dqi_blocks: 3 }, b0, QUOTA_INFO_OFFSET);
    tx.writeMeta(ext.blkno, b0, co);
    const ch = Buffer.from(await vol.readMetaBlock(ext.blkno + 1, co));
    LocalDiskChunk.encode({ dqc_free: g.chunkEntries - 2 }, ch, 0);
    ch[LocalDiskChunk.size] = 0b11;
    tx.writeMeta(ext.blkno + 1, ch, co);
    const eb = Buffer.alloc(vol.blockSize);
    LocalDiskDqblk.encode({ dqb_id: 7001n, dqb_spacemod: BigInt(3 * vol.clusterSize), dqb_inodemod: 2n }, eb, localDqblkLocation(g, 0, 0).offset);
    LocalDiskDqblk.encode({ dqb_id: 0n, dqb_spacemod: 0n, dqb_inodemod: BigInt.asUintN(64, -1n) }, eb, localDqblkLocation(g, 0, 1).offset);
    tx.writeMeta(ext.blkno + localDqblkLocation(g, 0, 0).block, eb, co);
    const ib = Buffer.from(ino.buf);
    const h = DinodeHeader.decode(ib, 0);
    h.i_size = 3 * vol.blockSize;
    DinodeHeader.encode(h, ib, 0);
    tx.writeMeta(fileIno, ib, CHECK_OFFSET.dinode);
  });
  await setJournalDinodeFlags(vol, vol.systemFile(systemFileName(JOURNAL_SYSTEM_INODE, 1)), true, false);
  await vol.close();

  daemon = await startRwDaemon(img, mnt);
  t.match(daemon.log(), /slot 1: 2 local user quota entries merged/, 'the mount says it merged them');
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  const after = report(img).user;
  const q7001 = after.find((q) => q.id === 7001);
  t.same(q7001 && [q7001.spaceBytes, q7001.inodes], [String(3 * 16384), '2'], 'id 7001 got the dead node\'s changes');
  const root0 = before.find((q) => q.id === 0)!; const root1 = after.find((q) => q.id === 0)!;
  t.equal(BigInt(root1.inodes), BigInt(root0.inodes) - 1n, 'a negative change is applied too');
  const v2 = await Volume.open(img, { readOnly: true });
  const st = await readLocalQuota(v2, USRQUOTA, 1);
  await v2.close();
  t.same([st.clean, st.entries], [true, 0], 'the local file is released and clean');
  fsckClean(t, img, 'after local quota recovery');
});

function vol2Blkno(img: string, p: string): number {
  const out = sh(`PATH=$PATH:/sbin:/usr/sbin debugfs.ocfs2 -R "stat ${p}" ${img} | head -1`);
  return Number(/Inode: (\d+)/.exec(out)![1]);
}

/**
 * The kernel preallocates global quota file blocks past i_size (ocfs2_acquire_dquot ->
 * ocfs2_extend_no_holes), which fsck.ocfs2 1.8.7 calls INODE_SPARSE_SIZE on the two global
 * files; a fresh mkfs.ocfs2 volume the kernel alone wrote to shows the same.  Nothing else.
 */
function fsckAfterKernel(t: Test, img: string, what: string): void {
  const quotaInodes = [vol2Blkno(img, '//aquota.user'), vol2Blkno(img, '//aquota.group')];
  const f = fsckOcfs2(img);
  t.equal(f.status, 0, `${what}: fsck.ocfs2 -fn exit status`);
  t.same(fsckProblems(img).filter((l) => !quotaInodes.some((n) => l.startsWith(`[INODE_SPARSE_SIZE] Inode ${n} `))), [],
    `${what}: fsck.ocfs2 -fn finds nothing but the kernel's quota-file preallocation`, { out: f.out });
}

const RUN_LOCAL = path.join(KERNEL_HARNESS_DIR, 'run-local.sh');

t.test('the kernel mounts our quota files with usrquota,grpquota and keeps them consistent', async (t) => {
  if (!requireJudge(t, kernelHarnessMissing())) return;
  const img = path.join(work, 'k.img');
  mkfsOcfs2(img, 300, `-b 4096 -C 4096 ${MAX}`);
  const base = baseline(img);
  daemon = await startRwDaemon(img, mnt);
  sh(`mkdir ${mnt}/pub && chmod 1777 ${mnt}/pub`);
  for (const [u, g] of [[1001, 2001], [1002, 2002]] as const) t.equal(asUser(u, g, WORKLOAD(u)).status, 0, `our workload, uid ${u}`);
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  sameUsage(t, img, base, 'after our workload');
  // The kernel charges from the usage it reads in our tree: a misread entry would show in the recount.
  const script = `set -e
mount -t ocfs2 -o usrquota,grpquota /dev/vda /mnt
mkdir /mnt/k
for u in 1001 1031; do
  gdd if=/dev/urandom of=/mnt/k/f$u bs=4096 count=50 2>/dev/null
  chown $u:$((u + 1000)) /mnt/k/f$u
  gdd if=/dev/urandom of=/mnt/k/f$u bs=4096 count=30 oflag=append conv=notrunc 2>/dev/null
done
chown 1031:2031 /mnt/pub/u1001/f1 /mnt/pub/u1002/f2
rm /mnt/pub/u1002/f4 /mnt/pub/u1001/sub/n5
truncate -s 0 /mnt/pub/u1001/f6 2>/dev/null || : > /mnt/pub/u1001/f6
umount /mnt
echo KERNEL-DONE`;
  const sf = path.join(work, 'kq.sh');
  fs.writeFileSync(sf, script);
  const r = spawnSync('timeout', ['900', RUN_LOCAL, '-t', '840', img, sf], { encoding: 'utf8' });
  t.equal(r.status, 0, 'the kernel mounted with quotas, wrote, unmounted', { out: `${r.stdout}${r.stderr}`.slice(-3000) });
  t.match(r.stdout, /KERNEL-DONE/, 'the guest script ran to its end');
  sameUsage(t, img, base, 'after the kernel');
  fsckAfterKernel(t, img, 'after the kernel');
  // And we carry on from what the kernel left.
  daemon = await startRwDaemon(img, mnt);
  t.equal(asUser(1031, 2031, 'head -c 70000 /dev/urandom > pub/after-kernel').status, 0, 'writes after the kernel');
  sh(`rm ${mnt}/pub/u1001/f1`);
  t.equal(await daemon.unmount(), 0, 'clean unmount');
  daemon = undefined;
  sameUsage(t, img, base, 'after the kernel and us again');
  fsckAfterKernel(t, img, 'after the kernel and us again');
});
