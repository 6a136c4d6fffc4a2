/**
 * POSIX details of the write path, as the kernel does them: fallocate
 * KEEP_SIZE past EOF laid out like the kernel's /unwritten/keep-size.bin;
 * setuid/setgid cleared on write by a non-CAP_FSETID writer and on chown;
 * sizes past 2^32 and the OCFS2 maximum file size (EFBIG, short writes);
 * O_APPEND from concurrent writers; fdatasync committing the journal only
 * when size/allocation changed.  Needs the CLI built (npx tsc -p .).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, tmpDir, sh, unmount, waitDaemonGone } from './lib/mount';
import { copyOfImage } from './lib/refimages';

const SBIN = 'PATH=$PATH:/sbin:/usr/sbin';
const work = tmpDir('posix');
t.teardown(() => { sh(`rm -rf ${work}`); });

const problems = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('['));
function fsckProblems(img: string): string[] {
  const r = spawnSync('timeout', ['120', 'bash', '-c', `${SBIN} fsck.ocfs2 -fn ${img}`], { encoding: 'utf8' });
  return problems(`${r.stdout}${r.stderr}`);
}
function mkfs(img: string, sizeMb: number): void {
  sh(`rm -f ${img} && truncate -s ${sizeMb}M ${img} && ${SBIN} mkfs.ocfs2 -q -F -M local -b 4096 -C 4096 -N 2 ${img} >/dev/null`);
}
function mountRw(img: string): string {
  const m = tmpDir('posix-mnt');
  const r = spawnSync('timeout', ['120', process.execPath, CLI, img, m], { encoding: 'utf8', env: { ...process.env, OCFS2_FUSE_LOG: `${m}.log` } });
  if (r.status !== 0) throw new Error(`rw mount failed: ${r.stderr}`);
  return m;
}
function umount(img: string, m: string): void {
  unmount(m);
  waitDaemonGone(img);
}
/** The extent records and sizes debugfs.ocfs2 shows for a file (shape only: no block numbers). */
function shape(img: string, file: string): string {
  const st = sh(`${SBIN} debugfs.ocfs2 -R "stat ${file}" ${img}`);
  const size = /Size: (\d+)/.exec(st)?.[1];
  const clusters = /Clusters: (\d+)/.exec(st)?.[1];
  const recs = [...st.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+\d+\s+(0x[0-9a-f]+)/gm)].map((m) => `${m[1]}+${m[2]}:${m[3]}`);
  const times = /ctime: (0x[0-9a-f]+ 0x[0-9a-f]+)[\s\S]*mtime: (0x[0-9a-f]+ 0x[0-9a-f]+)/.exec(st);
  return `size=${size} clusters=${clusters} recs=${recs.join(',')} mtime==ctime:${times?.[1] === times?.[2]}`;
}

t.test('fallocate -n past EOF: the kernel\'s layout (unwritten extent beyond i_size)', async (t) => {
  const ref = copyOfImage('local-4k', work);
  const kernel = shape(ref, '/unwritten/keep-size.bin');
  const kernelFsck = fsckProblems(ref).map((l) => l.replace(/Inode \d+/, 'Inode N'));
  fs.rmSync(ref);
  const img = path.join(work, 'keep.img');
  mkfs(img, 256);
  const base = new Set(fsckProblems(img));
  const m = mountRw(img);
  t.teardown(() => umount(img, m));
  // As the reference was made: 4 clusters of data, then fallocate -n of 4 more clusters past EOF.
  sh(`head -c 16384 /dev/urandom > ${m}/keep-size.bin && fallocate -n -o 16384 -l 16384 ${m}/keep-size.bin`);
  t.equal(sh(`stat -c '%s %b' ${m}/keep-size.bin`).trim(), '16384 64', 'i_size unchanged, 8 clusters allocated');
  umount(img, m);
  t.equal(shape(img, '/keep-size.bin'), kernel, 'same extents, sizes and c/mtime rule as the kernel\'s file');
  t.equal(kernel, 'size=16384 clusters=8 recs=0+4:0x0,4+4:0x1 mtime==ctime:true', 'the kernel\'s file as expected');
  const ours = fsckProblems(img).filter((l) => !base.has(l)).map((l) => l.replace(/Inode \d+/, 'Inode N'));
  t.same(ours, kernelFsck, 'fsck.ocfs2 says of ours exactly what it says of the kernel\'s (INODE_SPARSE_SIZE)');
});

t.test('setuid/setgid, huge offsets, O_APPEND', async (t) => {
  const img = path.join(work, 'posix.img');
  mkfs(img, 512);
  const base = new Set(fsckProblems(img));
  const m = mountRw(img);
  t.teardown(() => umount(img, m));
  const asUser = (cmd: string) => spawnSync('timeout', ['30', 'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'bash', '-c', cmd], { encoding: 'utf8' });
  const mode = (f: string) => sh(`stat -c %a ${m}/${f}`).trim();

  // A write by a non-CAP_FSETID writer clears setuid, and setgid when group-executable (file_remove_privs).
  sh(`cd ${m} && for f in u1 u2 u3 r1; do echo x > $f; done && chown 1000:1000 u1 u2 u3 && chmod 6775 u1 r1 && chmod 2755 u2 && chmod 2745 u3`);
  t.equal(asUser(`echo more >> ${m}/u1`).status, 0);
  t.equal(asUser(`echo more >> ${m}/u2`).status, 0);
  t.equal(asUser(`echo more >> ${m}/u3`).status, 0);
  sh(`echo more >> ${m}/r1`);
  spawnSync('sleep', ['1.1']);
  t.equal(mode('u1'), '775', 'user write: setuid and setgid (g+x) cleared');
  t.equal(mode('u2'), '755', 'user write: setgid with g+x cleared');
  t.equal(mode('u3'), '2745', 'user write: setgid without g+x kept (mandatory-locking marker)');
  t.equal(mode('r1'), '6775', 'root (CAP_FSETID) write keeps both');
  sh(`cd ${m} && chown 1234 r1`);
  spawnSync('sleep', ['1.1']);
  t.equal(mode('r1'), '775', 'chown clears setuid and setgid (g+x)');
  sh(`cd ${m} && echo y > t1 && chmod 6775 t1 && chown 1000:1000 t1 && chmod 6775 t1`);
  t.equal(asUser(`truncate -s 1 ${m}/t1`).status, 0);
  spawnSync('sleep', ['1.1']);
  t.equal(mode('t1'), '775', 'truncate by the owner clears them too');

  // Past 2^32 and up to the maximum file size (4 KiB clusters: 2^44 - 4096).
  const max = 2 ** 44 - 4096;
  sh(`cd ${m} && printf abc | dd of=big bs=1 seek=$((4294967296 + 123)) conv=notrunc 2>/dev/null`);
  t.equal(sh(`stat -c %s ${m}/big`).trim(), String(4294967296 + 126), 'size past 2^32');
  t.equal(sh(`dd if=${m}/big bs=1 skip=$((4294967296 + 120)) count=6 2>/dev/null | od -An -c | tr -s ' '`).trim(), '\\0 \\0 \\0 a b c', 'data past 2^32 (hole before it reads zeros)');
  t.equal(spawnSync('truncate', ['-s', String(max), `${m}/big`]).status, 0, 'truncate to the maximum size');
  const tooBig = spawnSync('truncate', ['-s', String(max + 1), `${m}/big`], { encoding: 'utf8' });
  t.match(tooBig.stderr, /File too large/, 'truncate past it: EFBIG');
  const py = (code: string) => spawnSync('timeout', ['30', 'python3', '-c', code, `${m}/big`, String(max)], { encoding: 'utf8' });
  const w = py(`import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY)\nmx=int(sys.argv[2])\nprint(os.pwrite(fd,b'z'*10000,mx-100))\ntry:\n  os.pwrite(fd,b'q',mx); print('no error')\nexcept OSError as e: print(e.errno)`);
  t.equal(w.stdout, '100\n27\n', 'a write crossing the maximum is cut short; one at it fails with EFBIG');
  t.equal(sh(`stat -c %s ${m}/big`).trim(), String(max));
  t.match(spawnSync('fallocate', ['-o', String(max - 4096), '-l', '8192', `${m}/big`], { encoding: 'utf8' }).stderr, /File too large/, 'fallocate past it: EFBIG');
  sh(`rm ${m}/big`);

  // O_APPEND: two writers appending at once lose nothing.
  // both writers are children of this shell, so `wait` returns once both have exited (every write returned)
  sh(`cd ${m} && { for i in $(seq 1 300); do echo "a-$i-aaaaaaaaaaaaaaaaaaaa"; done >> app; } & cd ${m} && for i in $(seq 1 300); do echo "b-$i-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"; done >> app; wait`);
  const lines = fs.readFileSync(path.join(m, 'app'), 'utf8').split('\n').filter((l) => l);
  t.equal(lines.length, 600, 'every appended line is there');
  t.ok(lines.every((l) => /^(a-\d+-a{20}|b-\d+-b{31})$/.test(l)), 'no line torn or overwritten');
  umount(img, m);
  t.same(fsckProblems(img).filter((l) => !base.has(l)), [], 'fsck.ocfs2 -fn clean');
});

/**
 * The highest transaction sequence committed in slot `slot`'s journal, read
 * from the image file as a reader outside the daemon sees it: every JBD2
 * commit block (magic, blocktype 2) in the journal's extents.
 */
function lastCommit(img: string, slot = 0): number {
  const st = sh(`${SBIN} debugfs.ocfs2 -R "stat //journal:${String(slot).padStart(4, '0')}" ${img}`);
  const bs = 4096; // mkfs() above: -b 4096 -C 4096, one block per cluster
  const fd = fs.openSync(img, 'r');
  let max = -1;
  try {
    for (const m of st.matchAll(/^\s*\d+\s+\d+\s+(\d+)\s+(\d+)\s+0x[0-9a-f]+\s*$/gm)) {
      const buf = Buffer.alloc(Number(m[1]) * bs);
      fs.readSync(fd, buf, 0, buf.length, Number(m[2]) * bs);
      for (let o = 0; o < buf.length; o += bs) {
        if (buf.readUInt32BE(o) === 0xc03b3998 && buf.readUInt32BE(o + 4) === 2) max = Math.max(max, buf.readUInt32BE(o + 8));
      }
    }
  } finally { fs.closeSync(fd); }
  return max;
}

t.test('fdatasync through the mount commits the journal only when size or allocation changed', async (t) => {
  const img = path.join(work, 'sync.img');
  mkfs(img, 256);
  const m = mountRw(img);
  t.teardown(() => umount(img, m));
  // A separate process makes the calls (never the serving process); each step runs when told
  // and answers once its sync returned, and the journal is read from the image between steps.
  const child = spawn('timeout', ['300', 'python3', '-c', `
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'\\7' * 65536); os.fsync(fd); print('start', flush=True)
steps = [
  lambda: (os.pwrite(fd, b'\\11' * 4096, 8192), os.fdatasync(fd)),
  lambda: os.fsync(fd),
  lambda: (os.pwrite(fd, b'\\11' * 4096, 65536), os.fdatasync(fd)),
  lambda: (os.ftruncate(fd, 100), os.fdatasync(fd)),
]
for step in steps:
    sys.stdin.readline(); step(); print('done', flush=True)
os.close(fd)
`, path.join(m, 'f')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let waiting: (() => void) | undefined;
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) { lines.push(partial.slice(0, nl)); partial = partial.slice(nl + 1); waiting?.(); }
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => { r(c); waiting?.(); }));
  const answer = async (n: number): Promise<void> => {
    while (lines.length < n) {
      if (child.exitCode !== null) throw new Error(`the syncing process exited (${child.exitCode}) before step ${n}`);
      await new Promise<void>((r) => { waiting = r; });
    }
  };
  const step = async (n: number): Promise<number> => { child.stdin!.write('go\n'); await answer(n); return lastCommit(img); };
  await answer(1);
  const s0 = lastCommit(img);
  t.ok(s0 > 0, `the first fsync committed (transaction ${s0})`);
  t.equal(await step(2), s0, 'overwrite + fdatasync: no commit (only mtime changed)');
  t.equal(await step(3), s0 + 1, 'fsync commits the timestamp change');
  t.equal(await step(4), s0 + 2, 'extending write + fdatasync: committed');
  t.equal(await step(5), s0 + 3, 'truncate + fdatasync: committed');
  child.stdin!.end();
  t.equal(await exited, 0, 'the syncing process finished');
});
