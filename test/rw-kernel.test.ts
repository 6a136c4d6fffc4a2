/**
 * The Linux kernel as the other side of our read-write mount (harness in
 * ../shared/kernel; three boots):
 *  (a) we write a tree through our FUSE mount (a few hundred files of all
 *      sizes, a 100 MiB file, sparse files, hard links, fast and slow
 *      symlinks, xattrs inline/block/many, a directory of 1,000 entries,
 *      device nodes, modes incl. setuid/setgid/sticky, owners, ns times),
 *      unmount, fsck clean; boot 1: the kernel mounts it and its manifest
 *      (paths, types, modes, owners, sizes, link counts, mtimes, md5s,
 *      symlink targets, rdevs, xattrs) must equal ours;
 *  (b) in the same boot the kernel writes a tree; we mount it read-write,
 *      rename/delete/append/truncate/chmod/chown/setfattr/link, unmount,
 *      fsck clean; boot 2: the kernel's manifest of it equals ours, and the
 *      kernel can still write into what we wrote (entries added to and removed
 *      from our 1,000-entry directory), fsck clean afterwards;
 *  (c) boot 3: the kernel fsyncs a set of files, then the VM is reset
 *      (sysrq-b) in the middle of a workload; the journal is left dirty, we
 *      mount read-write (replay), every synced file is there as the kernel's
 *      manifest says, unmount, fsck clean.
 * Manifests come from the harness's own kh_manifest (examples/manifest.sh),
 * run in the guest and (with GNU find/stat) on the host.  Needs the CLI
 * built (npx tsc -p .); skipped only where the harness cannot run.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './lib/refimages';
import { tmpDir, sh } from './lib/mount';
import { KERNEL_HARNESS_DIR, kernelHarnessMissing, requireJudge } from './lib/judges';
import { startRwDaemon, mkfsOcfs2, fsckOcfs2, type RwDaemon } from './lib/rwdaemon';
import { Volume } from '../src/libocfs2/volume';

const RUN_LOCAL = path.join(KERNEL_HARNESS_DIR, 'run-local.sh');
const MANIFEST_SH = path.join(KERNEL_HARNESS_DIR, 'examples', 'manifest.sh');

const work = tmpDir('rwkernel');
const img = path.join(work, 'k.img');
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
let daemon: RwDaemon | undefined;
t.teardown(async () => {
  if (daemon) await daemon.kill();
  sh(`rm -rf ${work}`);
});

/** Boot the kernel on the image with `script` (busybox sh); returns status, output and the files it left in its cwd. */
function boot(name: string, script: string, tmo = 600): { status: number; out: string; dir: string } {
  const run = path.join(work, `run-${name}`);
  const file = path.join(work, `${name}.sh`);
  fs.writeFileSync(file, script);
  const r = spawnSync('timeout', [String(tmo + 30), RUN_LOCAL, '-t', String(tmo), '-k', run, '-i', MANIFEST_SH, img, file], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, dir: path.join(run, 'vm') };
}

/**
 * kh_manifest on the host: GNU find/stat under the guest's names gfind/gstat
 * (as programs, since find -exec runs gstat).  Waits out libfuse's 1 s
 * attribute timeout first: the high-level API gives each name of a hard link
 * its own kernel inode, so right after `ln` the other name's cached link count
 * is stale for up to a second (fuse2fs behaves the same).
 */
function hostManifest(root: string, out: string, ...paths: string[]): void {
  const bin = path.join(work, 'gnubin');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin);
    for (const [g, real] of [['gfind', 'find'], ['gstat', 'stat']] as const) {
      fs.symlinkSync(sh(`command -v ${real}`).trim(), path.join(bin, g));
    }
  }
  sh(`sleep 1.2; cd ${root} && PATH=${bin}:$PATH LC_ALL=C bash -c '. ${MANIFEST_SH}; kh_manifest ${root} ${out} ${paths.join(' ')}'`, 600);
}

/** Rows by path; mtimes cut to 9 fraction digits (mawk on the host leaves find's 10th). */
function readManifest(file: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
    if (!line) continue;
    const f = line.split('\t');
    f[7] = f[7]!.replace(/^(\d+\.\d{9})\d*$/, '$1');
    rows.set(f[0]!, f.join('\t'));
  }
  return rows;
}

function compareManifests(t: Test, mine: string, theirs: string, what: string): void {
  const a = readManifest(mine); const b = readManifest(theirs);
  const diffs: string[] = [];
  for (const [p, row] of a) if (b.get(p) !== row) diffs.push(`ours:   ${row}\nkernel: ${b.get(p) ?? '(missing)'}`);
  for (const p of b.keys()) if (!a.has(p)) diffs.push(`kernel only: ${b.get(p)}`);
  t.ok(a.size > 0, `${what}: ${a.size} rows`);
  t.same(diffs.slice(0, 15), [], `${what}: manifests identical`);
}

function assertFsck(t: Test, what: string): void {
  const f = fsckOcfs2(img);
  t.ok(f.clean, `fsck.ocfs2 -fn clean ${what}`, { status: f.status, out: f.clean ? '' : f.out.split('\n').filter((l) => /\[|Skipping|rror/.test(l)).slice(0, 15) });
}

// Three TCG boots (each ~10 s plus md5s of a few hundred MiB in the guest) and two large manifests.
t.setTimeout(1_500_000);
t.test('kernel <-> our read-write mount', async (t) => {
  if (!requireJudge(t, kernelHarnessMissing())) return;
  mkfsOcfs2(img, 768);

  // ---- (a) we write a tree ------------------------------------------------------------
  daemon = await startRwDaemon(img, mnt);
  sh(`set -e; cd ${mnt} && mkdir ours && cd ours && mkdir small links sparse x d1000 dev
    for i in $(seq 0 199); do head -c $(( (i * 7919) % 20000 + (i % 3) * (i * 911 % 70000) )) /dev/urandom > small/f$i; done
    head -c 104857600 /dev/urandom > big100
    dd if=/dev/urandom of=sparse/s1 bs=4096 seek=10000 count=3 conv=notrunc status=none
    dd if=/dev/urandom of=sparse/s1 bs=1000 seek=7 count=2 conv=notrunc status=none
    truncate -s 200M sparse/s2 && dd if=/dev/urandom of=sparse/s2 bs=65536 seek=1000 count=2 conv=notrunc status=none
    truncate -s 50M sparse/empty
    ln small/f1 links/h1 && ln small/f2 links/h2a && ln small/f2 links/h2b
    ln -s ../small/f3 links/fast && ln -s "$(printf 'long%.0s' $(seq 1 700))" links/slow
    setfattr -n user.small -v hello x/../small/f10
    setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\\0' b)" small/f11
    for i in $(seq 1 30); do setfattr -n user.m$i -v "value-$i" small/f12; done
    setfattr -n trusted.t -v tt x && setfattr -n user.dir -v d x
    bash -c 'cd d1000 && touch e{1..1000}' && echo data > d1000/e500
    chmod 0600 small/f4 && chmod 4755 small/f5 && chmod 2710 small/f6 && mkdir x/sticky && chmod 1777 x/sticky
    chown 1234:5678 small/f7 && chown -h 42:43 links/fast
    mkfifo dev/fifo && mknod dev/c c 1 7 && mknod dev/b b 8 3
    touch -d '2001-02-03 04:05:06.123456789' small/f8 && touch -h -d '1999-01-01 00:00:01.5' links/slow
    touch -d '2010-10-10 10:10:10.010101010' small`, 600);
  hostManifest(mnt, path.join(work, 'ours-host.tsv'), 'ours');
  t.equal(await daemon.unmount(), 0, 'our daemon unmounted cleanly');
  daemon = undefined;
  assertFsck(t, 'after we wrote the tree');

  const b1 = boot('boot1', `set -e
. ./manifest.sh
mount -t ocfs2 /dev/vda /mnt
kh_manifest /mnt ./ours-kernel.tsv ours
mkdir /mnt/kern && cd /mnt/kern && mkdir a b c c/d1 c/d2
i=1; while [ $i -le 60 ]; do head -c $((i * 1500)) /dev/urandom > a/f$i; i=$((i + 1)); done
head -c 3000000 /dev/urandom > big
echo hello > b/small && gdd if=/dev/urandom of=b/sparse bs=4096 seek=5000 count=3 conv=notrunc status=none
ln a/f1 b/hard && ln -s ../a/f2 b/sym
setfattr -n user.k -v kv b/small && setfattr -n user.big -v "$(head -c 2000 /dev/zero | tr '\\0' k)" a/f3
echo x > c/d1/x && echo y > c/d2/y
i=1; while [ $i -le 300 ]; do : > c/many$i; i=$((i + 1)); done
gtouch -d '2005-05-05 05:05:05.555555555' a/f5 && chown 100:200 a/f6 && chmod 0751 a/f7
cd / && umount /mnt
echo boot1 done
`);
  t.equal(b1.status, 0, `boot 1 ran`, { out: b1.status === 0 ? '' : b1.out.slice(-3000) });
  if (b1.status !== 0) return;
  compareManifests(t, path.join(work, 'ours-host.tsv'), path.join(b1.dir, 'ours-kernel.tsv'), '(a) the kernel reads the tree we wrote');
  assertFsck(t, 'after the kernel wrote its tree');

  // ---- (b) we change the kernel's tree ------------------------------------------------
  daemon = await startRwDaemon(img, mnt);
  sh(`set -e; cd ${mnt}/kern
    mv a/f10 a/f10.renamed && mv a/f11 b/ && mv c/d1 b/d1moved && rm a/f12 && rm -r c/d2
    for i in $(seq 1 50); do rm c/many$i; done
    echo appended >> a/f20 && head -c 100000 /dev/urandom >> big
    truncate -s 1000 a/f30 && truncate -s 500000 a/f31
    chmod 0700 a/f32 && chmod 4711 a/f33 && chown 7:8 a/f34
    setfattr -n user.new -v ours a/f35 && setfattr -x user.k b/small && setfattr -n user.k2 -v "$(head -c 3000 /dev/zero | tr '\\0' q)" b/small
    touch -d '2020-02-02 02:02:02.222222222' a/f36
    ln a/f40 a/f40link && ln -s somewhere c/oursym && mkdir c/ournew && echo new > c/ournew/file
    rm b/hard && mv -f a/f41 a/f42 && head -c 70000 /dev/urandom > b/sparse`, 300);
  hostManifest(mnt, path.join(work, 'kern-ours.tsv'), 'kern');
  t.equal(await daemon.unmount(), 0, 'our daemon unmounted cleanly');
  daemon = undefined;
  assertFsck(t, 'after we changed the kernel\'s tree');

  const b2 = boot('boot2', `set -e
. ./manifest.sh
mount -t ocfs2 /dev/vda /mnt
kh_manifest /mnt ./kern-kernel.tsv kern
i=1; while [ $i -le 100 ]; do : > /mnt/ours/d1000/k$i; i=$((i + 1)); done
i=1; while [ $i -le 50 ]; do rm /mnt/ours/d1000/e$i; i=$((i + 1)); done
echo "d1000=$(ls /mnt/ours/d1000 | wc -l)"
umount /mnt
echo boot2 done
`);
  t.equal(b2.status, 0, 'boot 2 ran', { out: b2.status === 0 ? '' : b2.out.slice(-3000) });
  if (b2.status !== 0) return;
  compareManifests(t, path.join(work, 'kern-ours.tsv'), path.join(b2.dir, 'kern-kernel.tsv'), '(b) the kernel reads our changes to its tree');
  t.match(b2.out, /d1000=1050\b/, 'the kernel adds to and removes from our 1,000-entry directory');
  assertFsck(t, 'after the kernel changed our big directory');

  // ---- (c) a dirty journal left by the kernel -----------------------------------------
  const b3 = boot('boot3', `set -e
. ./manifest.sh
OUTD=$(pwd)
mount -t ocfs2 /dev/vda /mnt
cd /mnt && mkdir crash && cd crash && mkdir a b
pat() { awk -v n="$1" -v s="$2" 'BEGIN{ while (t < n) { l = sprintf("%s line %06d\\n", s, i++); if (t + length(l) > n) l = substr(l, 1, n - t); printf "%s", l; t += length(l) } }'; }
for n in 10 3000 70000 400000; do pat $n "A$n" | gdd of=a/f$n bs=65536 conv=fsync status=none; done
head -c 1000000 /dev/urandom | gdd of=a/random bs=65536 conv=fsync status=none
ln -s f10 a/link && setfattr -n user.s -v synced a/f10
sync
for n in 20 5000 200000; do pat $n "B$n" | gdd of=b/f$n bs=65536 conv=fsync status=none; done
mkdir b/sub && echo inner | gdd of=b/sub/inner conv=fsync status=none
echo more | gdd of=/mnt/ours/small/f100 conv=fsync,notrunc oflag=append status=none
sync b b/sub /mnt/ours/small
kh_manifest /mnt "$OUTD/synced.tsv" crash ours/small/f100
mkdir /mnt/inflight
( i=0; while :; do pat 30000 "W$i" > /mnt/inflight/w$i; [ $((i % 5)) = 0 ] && rm -f /mnt/inflight/w$((i - 3)); mv /mnt/inflight/w$i /mnt/inflight/r$i; i=$((i + 1)); done ) &
sleep 3
: > "$OUTD/crashing"
sleep 1
echo b > /proc/sysrq-trigger
sleep 30
`);
  t.ok(fs.existsSync(path.join(b3.dir, 'crashing')) || /sysrq: Resetting/.test(b3.out), 'boot 3 reached the crash point', { out: b3.out.slice(-2000) });
  t.ok(fs.existsSync(path.join(b3.dir, 'synced.tsv')), 'the guest wrote its manifest of the synced files');
  t.not(b3.status, 0, 'the VM died (no exit status)');
  {
    const v = await Volume.open(img, { readOnly: true, dirtyJournal: 'ignore' });
    const dirty = (await v.journalStates()).filter((j) => j.dirty).map((j) => j.slot);
    await v.close();
    t.ok(dirty.length > 0, `the kernel left a dirty journal (slots ${dirty.join(',')})`);
  }
  daemon = await startRwDaemon(img, mnt);
  t.match(daemon.log(), /replayed the journal/, 'our mount replayed it');
  hostManifest(mnt, path.join(work, 'synced-ours.tsv'), 'crash', 'ours/small/f100');
  // The in-flight directory itself may not have been committed before the reset.
  const inflight = fs.existsSync(path.join(mnt, 'inflight')) ? fs.readdirSync(path.join(mnt, 'inflight')).length : -1;
  t.equal(await daemon.unmount(), 0, 'our daemon unmounted cleanly');
  daemon = undefined;
  if (fs.existsSync(path.join(b3.dir, 'synced.tsv'))) {
    compareManifests(t, path.join(work, 'synced-ours.tsv'), path.join(b3.dir, 'synced.tsv'), '(c) every file the guest synced survives our replay');
  }
  t.comment(inflight < 0 ? 'the in-flight directory was not committed before the reset' : `${inflight} in-flight files survived the reset`);
  assertFsck(t, 'after we replayed the kernel\'s journal');
});
