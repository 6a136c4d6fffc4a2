/**
 * Read-write mount, end to end through a real FUSE mount on a fresh
 * mkfs.ocfs2 image (default features: inline data, indexed dirs, xattrs,
 * sparse, unwritten): unpack a generated tree, rename/move/delete, large and
 * sparse files, appends, truncates, hole punches, hard and symbolic links,
 * xattrs, device nodes; POSIX errors.  After unmount fsck.ocfs2 -fn must be
 * clean, and a fresh read-only mount must show exactly what was written.
 * Needs the CLI built (npx tsc -p .).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, tmpDir, sh, unmount, mountRo, waitDaemonGone } from './lib/mount';

function mkfs(img: string, sizeMb: number, extra = ''): void {
  sh(`rm -f ${img} && truncate -s ${sizeMb}M ${img} && PATH=$PATH:/sbin:/usr/sbin mkfs.ocfs2 -q -F -M local -b 4096 -C 4096 -N 2 ${extra} ${img} >/dev/null`, 120);
}

function mountRw(img: string): { mountpoint: string; log: string; unmount(): void } {
  const mountpoint = tmpDir('rwmnt');
  const log = `${mountpoint}.log`;
  const r = spawnSync('timeout', ['120', process.execPath, CLI, img, mountpoint], {
    encoding: 'utf8', env: { ...process.env, OCFS2_FUSE_LOG: log },
  });
  if (r.status !== 0) throw new Error(`rw mount failed (${r.status}): ${r.stderr}`);
  return {
    mountpoint, log,
    unmount(): void {
      unmount(mountpoint);
      // The daemon finishes the unmount (journal checkpoint, slot release) after the kernel lets go.
      waitDaemonGone(img);
      try { fs.rmdirSync(mountpoint); } catch { /* busy */ }
    },
  };
}

function fsck(img: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['120', 'bash', '-c', `PATH=$PATH:/sbin:/usr/sbin fsck.ocfs2 -fn ${img}`], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Everything a reader can see: paths, types, modes, owners, links, sizes, mtimes (ns), md5s, symlink targets, xattrs. */
function manifest(root: string): string {
  return sh(`cd ${root} && find . -mindepth 1 ! -name lost+found ! -path './lost+found/*' -printf '%p %y %m %U %G %n %s %T@ %l\\n' | LC_ALL=C sort`
    + ` && find . -type f ! -path './lost+found/*' -exec md5sum {} + | LC_ALL=C sort -k2`
    + ` && (getfattr -R -P -d -m - --absolute-names . 2>/dev/null || true)`, 600);
}

const work = tmpDir('rw');
const img = path.join(work, 'vol.img');
const src = path.join(work, 'src');
t.teardown(() => { sh(`rm -rf ${work}`); });

t.test('workload on a fresh mkfs.ocfs2 volume, fsck clean, read back by a fresh mount', async (t) => {
  mkfs(img, 1024);
  // A source tree: 30 directories x 60 files (0 .. 40 KiB), some nested.
  sh(`mkdir -p ${src} && cd ${src} && for d in $(seq 1 30); do mkdir -p d$d/sub; for f in $(seq 1 60); do head -c $(( (d * 7919 + f * 104729) % 40000 )) /dev/urandom > d$d/f$f; done; echo nested > d$d/sub/n; done`, 300);
  const m = mountRw(img);
  t.teardown(() => m.unmount());
  const M = m.mountpoint;
  sh(`tar -C ${src} -cf - . | tar -C ${M} -xf -`, 600);
  t.equal(sh(`cd ${M} && find . -type f ! -path './lost+found/*' | wc -l`).trim(), String(30 * 61), 'all files unpacked');
  t.equal(sh(`cd ${src} && find . -type f -exec md5sum {} + | sort -k2`), sh(`cd ${M} && find . -type f ! -path './lost+found/*' -exec md5sum {} + | sort -k2`), 'contents match the source');
  // Namespace changes.
  sh(`cd ${M} && mv d1 d1moved && mv d2/f1 d3/ && mv d3/sub d4/sub3 && mv d5/f2 d5/f3 && rm -r d6 && rm d7/f1* && mv d8 d9/d8in`);
  sh(`cd ${M} && mkdir empty && mv d10 empty2 && mkdir e2 && mv e2 empty2/sub` );
  // Rename over an existing empty directory and over a file.
  sh(`cd ${M} && mkdir target && mkdir moveme && echo m > moveme/x && mv -T moveme target && mv d11/f1 d11/f2`);
  // Data: large, sparse, appends, truncates, hole punches, fallocate.
  sh(`cd ${M} && head -c 67108864 /dev/urandom > big && cp big big.copy && dd if=/dev/urandom of=sparse bs=4096 seek=25000 count=3 conv=notrunc 2>/dev/null`);
  sh(`cd ${M} && echo one > app && for i in $(seq 1 200); do echo line$i >> app; done && head -c 9000 /dev/urandom >> app`);
  sh(`cd ${M} && cp big trunc && truncate -s 1000001 trunc && truncate -s 3000000 trunc && truncate -s 0 d12/f5 && truncate -s 50000 d12/f6`);
  sh(`cd ${M} && cp big punched && fallocate -p -o 12345 -l 5000000 punched && fallocate -l 2M falloc && echo small > inl && truncate -s 100000 inl`);
  // Links, special files, xattrs, metadata.
  sh(`cd ${M} && ln d13/f1 hard1 && ln d13/f1 d14/hard2 && ln -s d13/f1 sym && ln -s $(printf 'x%.0s' $(seq 1 3000)) slowsym && mkfifo fifo && mknod cdev c 1 7 && mknod bdev b 8 3`);
  sh(`cd ${M} && setfattr -n user.small -v abc d13/f2 && setfattr -n user.big -v "$(head -c 200 /dev/zero | tr '\\0' z)" d13/f2 && for i in $(seq 1 20); do setfattr -n user.attr$i -v value$i d13/f3; done && setfattr -n user.gone -v 1 d13/f3 && setfattr -x user.gone d13/f3 && setfattr -n trusted.t -v tt d13`);
  sh(`cd ${M} && chmod 0750 d15 && chmod 4755 d15/f1 && chown 1234:5678 d15/f2 && touch -d '2001-02-03 04:05:06.123456789' d15/f3 && touch -a -d '1999-12-31 23:59:59.5' d15/f4`);
  sh(`cd ${M} && mkdir sg && chmod 2775 sg && chown 0:4321 sg && mkdir sg/child && touch sg/file`);
  t.equal(sh(`stat -c '%g %A' ${M}/sg/child ${M}/sg/file`), '4321 drwxr-sr-x\n4321 -rw-r--r--\n', 'setgid directory: group and setgid bit inherited');
  t.equal(sh(`cmp ${M}/big ${M}/big.copy && echo same`).trim(), 'same');
  t.equal(sh(`stat -c %s ${M}/sparse`).trim(), String(25003 * 4096));
  t.ok(Number(sh(`stat -c %b ${M}/sparse`).trim()) < 1000, 'sparse file allocates only what was written');
  t.equal(sh(`head -c 12345 ${M}/big | cmp - <(head -c 12345 ${M}/punched) && echo ok`, 60).trim(), 'ok', 'data before the hole survives');
  t.equal(sh(`dd if=${M}/punched bs=1 skip=12345 count=5000000 2>/dev/null | tr -d '\\0' | wc -c`).trim(), '0', 'the punched hole reads as zeros');
  t.equal(sh(`dd if=${M}/trunc bs=1 skip=1000001 2>/dev/null | tr -d '\\0' | wc -c`).trim(), '0', 'extended tail reads as zeros');
  t.equal(sh(`stat -c '%h' ${M}/hard1`).trim(), '3');
  t.equal(fs.readlinkSync(path.join(M, 'slowsym')).length, 3000, 'slow symlink');

  // POSIX errors.
  const code = (fn: () => void) => { try { fn(); return 'ok'; } catch (e) { return (e as NodeJS.ErrnoException).code; } };
  t.equal(code(() => fs.mkdirSync(path.join(M, 'd13'))), 'EEXIST');
  t.equal(code(() => fs.unlinkSync(path.join(M, 'nope'))), 'ENOENT');
  t.equal(code(() => fs.mkdirSync(path.join(M, 'app', 'x'))), 'ENOTDIR');
  t.equal(code(() => fs.rmdirSync(path.join(M, 'd13'))), 'ENOTEMPTY');
  t.equal(code(() => fs.unlinkSync(path.join(M, 'd13'))), 'EISDIR');
  t.equal(code(() => fs.writeFileSync(path.join(M, 'x'.repeat(256)), '')), 'ENAMETOOLONG');
  t.equal(code(() => fs.renameSync(path.join(M, 'd13'), path.join(M, 'd13', 'sub'))), 'EINVAL');
  t.equal(code(() => fs.renameSync(path.join(M, 'd14'), path.join(M, 'd15'))), 'ENOTEMPTY');
  t.equal(code(() => fs.renameSync(path.join(M, 'app'), path.join(M, 'd15'))), 'EISDIR');
  t.equal(code(() => fs.linkSync(path.join(M, 'd13'), path.join(M, 'dirlink'))), 'EPERM');
  // Sticky directory: another user may not remove someone else's file.
  sh(`cd ${M} && mkdir -m 1777 sticky && touch sticky/rootfile && chmod 666 sticky/rootfile`);
  t.not(spawnSync('timeout', ['20', 'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'rm', '-f', `${M}/sticky/rootfile`]).status, 0, 'sticky: unlink by another user refused');
  t.ok(fs.existsSync(path.join(M, 'sticky', 'rootfile')));
  t.not(spawnSync('timeout', ['20', 'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'touch', `${M}/d15/new`]).status, 0, 'EACCES in a 0750 directory');

  spawnSync('sleep', ['1.2']); // attribute cache
  const before = manifest(M);
  m.unmount();
  const f = fsck(img);
  t.equal(f.status, 0, 'fsck.ocfs2 -fn exit status');
  t.notMatch(f.out, /^\[/m, 'fsck.ocfs2 reports no problem');
  if (/^\[/m.test(f.out)) t.comment(f.out.split('\n').filter((l) => l.startsWith('[')).slice(0, 10).join('\n'));
  t.notMatch(f.out, /Skipping journal replay/);
  const ro = mountRo(img);
  t.teardown(() => ro.unmount());
  t.equal(manifest(ro.mountpoint), before, 'a fresh read-only mount reads back exactly what was written');
  ro.unmount();
});
