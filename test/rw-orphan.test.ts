/**
 * Open-but-unlinked files through a real read-write mount: the unlinked
 * inode lives on in orphan_dir:0000 (OCFS2_ORPHANED_FL, no links, entry named
 * by its block number) while a process keeps using its descriptor, and is
 * deleted at the last close; after kill -9 of the daemon with such a file
 * open, the next mount deletes the orphan (space back, fsck clean).
 * Needs the CLI built (npx tsc -p .).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { CLI, tmpDir, sh, unmount, waitDaemonGone, daemonPid } from './lib/mount';
import { Volume } from '../src/libocfs2/volume';
import { lookupName } from '../src/libocfs2/directory';
import { OCFS2_ORPHANED_FL, OCFS2_VALID_FL } from '../src/libocfs2/constants';

const SBIN = 'PATH=$PATH:/sbin:/usr/sbin';
const work = tmpDir('orphan');
t.teardown(() => { sh(`rm -rf ${work}`); });

const problems = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('['));
function fsckProblems(img: string): { status: number; problems: string[]; out: string } {
  const r = spawnSync('timeout', ['120', 'bash', '-c', `${SBIN} fsck.ocfs2 -fn ${img}`], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  return { status: r.status ?? -1, problems: problems(out), out };
}

function mountRw(img: string, mountpoint: string): void {
  const r = spawnSync('timeout', ['120', process.execPath, CLI, img, mountpoint], {
    encoding: 'utf8', env: { ...process.env, OCFS2_FUSE_LOG: `${mountpoint}.log` },
  });
  if (r.status !== 0) throw new Error(`rw mount failed (${r.status}): ${r.stderr}`);
}

const waitGone = (img: string): void => waitDaemonGone(img);

/** A helper process holding `file` open; commands on stdin: write <pos> <len>, read <pos> <len> -> md5, fsync, stat, close. */
const HOLDER = `
import os, sys, hashlib
fd = os.open(sys.argv[1], os.O_RDWR)
print('open', flush=True)
for line in sys.stdin:
    w = line.split()
    if w[0] == 'write':
        data = bytes((i * 7 + int(w[1])) % 251 for i in range(int(w[2])))
        os.pwrite(fd, data, int(w[1])); print('ok', flush=True)
    elif w[0] == 'read':
        print(hashlib.md5(os.pread(fd, int(w[2]), int(w[1]))).hexdigest(), flush=True)
    elif w[0] == 'fsync':
        os.fsync(fd); print('ok', flush=True)
    elif w[0] == 'stat':
        st = os.fstat(fd); print(st.st_size, st.st_nlink, flush=True)
    elif w[0] == 'close':
        os.close(fd); print('closed', flush=True); break
`;

class Holder {
  private readonly p: ChildProcess;
  private buf = '';
  private waiters: Array<(l: string) => void> = [];
  constructor(file: string) {
    this.p = spawn('timeout', ['300', 'python3', '-c', HOLDER, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.p.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i); this.buf = this.buf.slice(i + 1);
        this.waiters.shift()?.(line);
      }
    });
  }
  next(): Promise<string> { return new Promise((r) => this.waiters.push(r)); }
  async cmd(c: string): Promise<string> { const n = this.next(); this.p.stdin!.write(`${c}\n`); return n; }
  kill(): void { this.p.kill('SIGKILL'); }
}

function expectedMd5(pos: number, len: number): string {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + pos) % 251;
  return createHash('md5').update(b).digest('hex');
}

function freeBlocks(m: string): number {
  return Number(sh(`stat -f -c %f ${m}`).trim());
}

t.test('unlinked while open: orphan, still usable, deleted at last close', async (t) => {
  const img = path.join(work, 'a.img');
  sh(`truncate -s 512M ${img} && ${SBIN} mkfs.ocfs2 -q -F -M local -b 4096 -C 4096 -N 2 ${img} >/dev/null`);
  const base = new Set(fsckProblems(img).problems);
  const m = tmpDir('orphan-mnt');
  mountRw(img, m);
  t.teardown(() => { unmount(m); waitGone(img); });
  const empty = freeBlocks(m);
  sh(`head -c 8388608 /dev/urandom > ${m}/victim && sync -f ${m}`);
  const ino = Number(sh(`stat -c %i ${m}/victim`).trim());
  const h = new Holder(path.join(m, 'victim'));
  t.equal(await h.next(), 'open');
  sh(`rm ${m}/victim`);
  t.same(fs.readdirSync(m).filter((n) => n !== 'lost+found'), [], 'the name is gone (no .fuse_hidden file either)');
  t.equal(await h.cmd('write 4096 100000'), 'ok', 'write through the descriptor of the unlinked file');
  t.equal(await h.cmd('read 4096 100000'), expectedMd5(4096, 100000), 'read back through it');
  t.equal(await h.cmd('write 9000000 5000'), 'ok', 'extend it');
  t.equal(await h.cmd('stat'), '9005000 0', 'fstat: new size, no links');
  t.ok(freeBlocks(m) < empty - 2000, 'its space is still in use');
  // The orphan as the kernel leaves it: entry in orphan_dir:0000 named %016x, ORPHANED flag, i_links_count 0.
  sh(`sync -f ${m}`);
  const orphanName = ino.toString(16).padStart(16, '0');
  t.equal(await h.cmd('close'), 'closed');
  for (let i = 0; i < 50 && freeBlocks(m) < empty; i++) spawnSync('sleep', ['0.1']);
  t.equal(freeBlocks(m), empty, 'all space back after the last close');
  unmount(m); waitGone(img);
  const f = fsckProblems(img);
  t.equal(f.status, 0);
  t.same(f.problems.filter((l) => !base.has(l)), [], 'fsck.ocfs2 -fn clean');
  t.notMatch(sh(`${SBIN} debugfs.ocfs2 -R "ls //orphan_dir:0000" ${img}`), orphanName, 'orphan entry removed');
});

t.test('kill -9 with an unlinked file open: the next mount deletes the orphan', async (t) => {
  const img = path.join(work, 'b.img');
  sh(`truncate -s 512M ${img} && ${SBIN} mkfs.ocfs2 -q -F -M local -b 4096 -C 4096 -N 2 ${img} >/dev/null`);
  const base = new Set(fsckProblems(img).problems);
  const m = tmpDir('orphan-mnt');
  mountRw(img, m);
  t.teardown(() => { unmount(m); waitGone(img); });
  const empty = freeBlocks(m);
  sh(`head -c 16777216 /dev/urandom > ${m}/victim && mkdir ${m}/d && echo keep > ${m}/d/keep`);
  const ino = Number(sh(`stat -c %i ${m}/victim`).trim());
  const h = new Holder(path.join(m, 'victim'));
  t.equal(await h.next(), 'open');
  sh(`rm ${m}/victim`);
  t.equal(await h.cmd('write 0 4096'), 'ok');
  // fsync commits the journal (sync -f does not reach a FUSE 2 filesystem).
  t.equal(await h.cmd('fsync'), 'ok', 'fsync through the descriptor of the unlinked file');
  // Crash: the daemon dies with the file open.
  const pid = daemonPid(img);
  t.ok(pid, 'daemon running');
  process.kill(pid!, 'SIGKILL');
  h.kill();
  unmount(m); waitGone(img);
  // On disk now (after replaying the journal, in memory): the inode in orphan_dir:0000 as the kernel leaves it.
  const orphanName = ino.toString(16).padStart(16, '0');
  const vol = await Volume.open(img, { readOnly: true, dirtyJournal: 'overlay' });
  const od = await vol.readInode(vol.systemFile('orphan_dir:0000'));
  const e = await lookupName(vol, od, Buffer.from(orphanName));
  t.equal(e?.inode, ino, 'the crash left the inode in orphan_dir:0000 under its block number (%016x)');
  const oi = (await vol.readInode(ino)).inode;
  t.equal(oi.flags & (OCFS2_VALID_FL | OCFS2_ORPHANED_FL), OCFS2_VALID_FL | OCFS2_ORPHANED_FL, 'valid, with OCFS2_ORPHANED_FL');
  t.equal(oi.nlink, 0, 'no links');
  t.equal(oi.orphanedSlot, 0, 'i_orphaned_slot 0');
  t.equal(oi.size, 16777216, 'size as written');
  await vol.close();
  // Remount: journal replayed, orphan deleted.
  mountRw(img, m);
  t.equal(fs.readFileSync(path.join(m, 'd', 'keep'), 'utf8'), 'keep\n');
  t.match(fs.readFileSync(`${m}.log`, 'utf8'), /orphan_dir:0000: deleted 1 of 1 orphaned inodes/, 'the mount reports the orphan it deleted');
  sh(`rm -r ${m}/d`);
  t.equal(freeBlocks(m), empty, 'all space back');
  unmount(m); waitGone(img);
  const f = fsckProblems(img);
  t.equal(f.status, 0);
  t.same(f.problems.filter((l) => !base.has(l)), [], 'fsck.ocfs2 -fn clean');
  t.notMatch(sh(`${SBIN} debugfs.ocfs2 -R "ls //orphan_dir:0000" ${img}`), orphanName, 'orphan entry gone');
});
