/**
 * What libfuse 3's low-level protocol brings, on real read-write mounts:
 * renameat2 RENAME_NOREPLACE / RENAME_EXCHANGE (fsck clean), SEEK_DATA /
 * SEEK_HOLE against the extent map, 1 MiB write requests, flock and POSIX
 * locks between two processes, ENAMETOOLONG for names over 255 bytes, and
 * hard links as one kernel inode (no stale mode/nlink through the other name).
 * Needs the CLI built (make build) and gcc (for renameat2).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { tmpDir, sh } from './lib/mount';
import { startRwDaemon, mkfsOcfs2, fsckOcfs2, SBIN_ENV } from './lib/rwdaemon';
import { startFuseServer } from './lib/fuse-server';

const work = tmpDir('proto');
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

/** renameat2(2) from the command line: `renameat2 none|noreplace|exchange FROM TO` prints ok or the errno number. */
const RENAMEAT2_C = `
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  unsigned flags = !strcmp(argv[1], "noreplace") ? 1 : !strcmp(argv[1], "exchange") ? 2 : 0;
  if (argc != 4) return 2;
  if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags)) { printf("%d\\n", errno); return 1; }
  printf("ok\\n");
  return 0;
}
`;
const renameat2 = path.join(work, 'renameat2');
fs.writeFileSync(`${renameat2}.c`, RENAMEAT2_C);
sh(`gcc -O -o ${renameat2} ${renameat2}.c`);
const rn = (flags: string, from: string, to: string): string => spawnSync('timeout', ['20', renameat2, flags, from, to], { encoding: 'utf8' }).stdout.trim();
const py = (code: string, ...args: string[]): { status: number; out: string; err: string } => {
  const r = spawnSync('timeout', ['60', 'python3', '-c', code, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout.trim(), err: r.stderr };
};
const EEXIST = '17';
const ENOENT = '2';

t.test('renameat2: RENAME_NOREPLACE refuses an existing target, RENAME_EXCHANGE swaps atomically', async (t) => {
  const img = path.join(work, 'rename.img');
  mkfsOcfs2(img, 256);
  const mnt = tmpDir('proto-mnt');
  const d = await startRwDaemon(img, mnt);
  t.teardown(() => d.kill());
  const m = (p: string) => path.join(mnt, p);
  fs.writeFileSync(m('a'), 'content-a');
  fs.writeFileSync(m('b'), 'content-b');
  t.equal(rn('noreplace', m('a'), m('b')), EEXIST, 'NOREPLACE over an existing file: EEXIST');
  t.equal(fs.readFileSync(m('a'), 'utf8') + fs.readFileSync(m('b'), 'utf8'), 'content-acontent-b', 'both unchanged');
  t.equal(rn('noreplace', m('a'), m('c')), 'ok', 'NOREPLACE to a free name works');
  t.notOk(fs.existsSync(m('a')), 'source name gone');

  t.equal(rn('exchange', m('c'), m('b')), 'ok', 'EXCHANGE of two files');
  t.equal(fs.readFileSync(m('c'), 'utf8'), 'content-b');
  t.equal(fs.readFileSync(m('b'), 'utf8'), 'content-a');
  t.equal(rn('exchange', m('c'), m('nothing')), ENOENT, 'EXCHANGE needs both names: ENOENT');

  // A directory and a file in different parents trade places: ".." and link counts follow.
  fs.mkdirSync(m('p1/sub'), { recursive: true });
  fs.writeFileSync(m('p1/sub/inside'), 'x');
  fs.mkdirSync(m('p2'));
  fs.writeFileSync(m('p2/file'), 'f');
  const subIno = fs.statSync(m('p1/sub')).ino;
  t.equal(rn('exchange', m('p1/sub'), m('p2/file')), 'ok', 'EXCHANGE of a directory and a file across parents');
  t.equal(fs.statSync(m('p2/file')).ino, subIno, 'the directory is now p2/file');
  t.equal(fs.readFileSync(m('p2/file/inside'), 'utf8'), 'x', 'with its contents');
  t.equal(fs.readFileSync(m('p1/sub'), 'utf8'), 'f', 'the file is now p1/sub');
  t.equal(fs.statSync(m('p2/file/..')).ino, fs.statSync(m('p2')).ino, '".." of the moved directory is its new parent');
  t.equal(fs.statSync(m('p1')).nlink, 2, 'p1 lost a subdirectory link');
  t.equal(fs.statSync(m('p2')).nlink, 3, 'p2 gained one');
  t.equal(rn('exchange', m('p2'), m('p2/file/inside')), '22', 'EXCHANGE of a directory into itself: EINVAL');

  t.equal(await d.unmount(), 0, 'clean unmount');
  const f = fsckOcfs2(img);
  t.ok(f.clean, `fsck.ocfs2 -fn clean:\n${f.out}`);
});

/** (start, end) data segments of a file by SEEK_DATA/SEEK_HOLE. */
const SEGMENTS = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
segs, off = [], 0
while True:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError as e:
        assert e.errno == 6, e  # ENXIO: no data after off
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    segs.append([d, h])
    off = h
    if off >= size: break
try:
    os.lseek(fd, size, os.SEEK_DATA); print('no ENXIO at EOF')
except OSError as e:
    pass
print(segs)
`;

t.test('lseek SEEK_DATA / SEEK_HOLE follow the extent map', async (t) => {
  const img = path.join(work, 'seek.img');
  mkfsOcfs2(img, 256);
  const mnt = tmpDir('proto-mnt');
  const d = await startRwDaemon(img, mnt);
  t.teardown(() => d.kill());
  const f = path.join(mnt, 'sparse');
  const MB = 1 << 20;
  // Data at 0, at 1 MiB, an unwritten (fallocated) range at 2 MiB, data at the tail of 3 MiB.
  sh(`printf 'x%.0s' $(seq 4096) | dd of=${f} bs=4096 conv=notrunc status=none`);
  sh(`printf 'y%.0s' $(seq 8192) | dd of=${f} bs=4096 seek=256 conv=notrunc status=none`);
  sh(`fallocate -o ${2 * MB} -l 65536 ${f}`);
  sh(`printf 'tail' | dd of=${f} bs=1 seek=${3 * MB + 100} conv=notrunc status=none`);
  const r = py(SEGMENTS, f);
  t.equal(r.status, 0, r.err);
  const segs = JSON.parse(r.out.split('\n').at(-1)!) as Array<[number, number]>;
  t.notMatch(r.out, /no ENXIO/, 'SEEK_DATA at EOF: ENXIO');
  t.same(segs, [[0, 4096], [MB, MB + 8192], [3 * MB, 3 * MB + 104]], 'data segments: written clusters only (holes and unwritten extents are holes)');
  t.equal(await d.unmount(), 0, 'clean unmount');

  // The same segments from the on-disk extent map (debugfs.ocfs2), written extents only.
  const st = spawnSync('debugfs.ocfs2', ['-R', 'stat /sparse', img], { encoding: 'utf8', env: SBIN_ENV }).stdout;
  const cs = 4096;
  const size = Number(/Size: (\d+)/.exec(st)![1]);
  const recs = [...st.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+\d+\s+(0x[0-9a-f]+)/gm)].map((x) => ({ cpos: Number(x[1]), n: Number(x[2]), flags: Number(x[3]) }));
  t.ok(recs.some((x) => x.flags & 1), 'the fallocated range is an unwritten extent');
  const fromMap: Array<[number, number]> = [];
  for (const x of recs.filter((y) => !(y.flags & 1)).sort((a, b) => a.cpos - b.cpos)) {
    const s = x.cpos * cs;
    const e = Math.min(size, (x.cpos + x.n) * cs);
    const last = fromMap.at(-1);
    if (last && last[1] === s) last[1] = e; else fromMap.push([s, e]);
  }
  t.same(segs, fromMap, 'SEEK_DATA/SEEK_HOLE segments = written extents of the extent map');
  t.ok(fsckOcfs2(img).clean, 'fsck clean');
});

t.test('a 1 MiB write arrives as one 1 MiB request', async (t) => {
  const img = path.join(work, 'big.img');
  mkfsOcfs2(img, 256);
  const s = await startFuseServer(img, { options: ['default_permissions'] });
  t.teardown(() => s.cleanup());
  const { conn } = await s.request<{ conn: { maxWrite: number; protoMinor: number } }>({ cmd: 'conn' });
  t.equal(conn.maxWrite, 1 << 20, 'INIT negotiated max_write = 1 MiB');
  sh(`dd if=/dev/urandom of=${s.mnt}/big bs=1M count=8 conv=fsync status=none`);
  const { sizes } = await s.request<{ sizes: number[] }>({ cmd: 'writes' });
  t.equal(sizes.reduce((a, b) => a + b, 0), 8 << 20, 'all bytes arrived');
  t.ok(sizes.filter((n) => n === 1 << 20).length >= 4, `1 MiB requests (sizes ${[...new Set(sizes)].join(',')})`);
  t.ok(Math.max(...sizes) <= 1 << 20, 'none larger');
});

const LOCKS = `
import fcntl, os, sys, time
path, role = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
if role == 'holder':
    fcntl.flock(fd, fcntl.LOCK_EX)
    fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
    print('held', flush=True)
    sys.stdin.readline()
    fcntl.flock(fd, fcntl.LOCK_UN)
    fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
    print('released', flush=True)
    sys.stdin.readline()
else:
    def attempt(f):
        try:
            f(); return 'got'
        except BlockingIOError:
            return 'busy'
    out = [attempt(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)),
           attempt(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 50, 50)),
           attempt(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 200))]
    print(' '.join(out))
`;

t.test('flock and POSIX locks between two processes on one mount', async (t) => {
  const img = path.join(work, 'locks.img');
  mkfsOcfs2(img, 256);
  const mnt = tmpDir('proto-mnt');
  const d = await startRwDaemon(img, mnt);
  t.teardown(() => d.kill());
  const f = path.join(mnt, 'lockme');
  fs.writeFileSync(f, 'x'.repeat(1000));
  const holder = spawn('timeout', ['60', 'python3', '-c', LOCKS, f, 'holder'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => { holder.kill(); });
  let out = '';
  const waitFor = (re: RegExp) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`holder said: ${out}`)), 30_000);
    const check = () => { if (re.test(out)) { clearTimeout(timer); resolve(); } };
    holder.stdout.on('data', (b: Buffer) => { out += b.toString(); check(); });
    check();
  });
  await waitFor(/held/);
  t.equal(py(LOCKS, f, 'other').out, 'busy busy got', 'while held: flock busy, overlapping range busy, other range free');
  holder.stdin.write('\n');
  await waitFor(/released/);
  t.equal(py(LOCKS, f, 'other').out, 'got got got', 'after release: all free');
  holder.stdin.end();
  t.equal(await d.unmount(), 0, 'clean unmount');
});

t.test('names over 255 bytes: ENAMETOOLONG; hard links are one inode', async (t) => {
  const img = path.join(work, 'names.img');
  mkfsOcfs2(img, 256);
  const mnt = tmpDir('proto-mnt');
  const d = await startRwDaemon(img, mnt);
  t.teardown(() => d.kill());
  const long = path.join(mnt, 'n'.repeat(256));
  fs.mkdirSync(path.join(mnt, 'dir'));
  fs.writeFileSync(path.join(mnt, 'ok'), 'x');
  const calls = `
import os, sys, errno
p, ok = sys.argv[1], sys.argv[2]
res = []
for name, f in [('stat', lambda: os.stat(p)), ('chmod', lambda: os.chmod(p, 0o600)), ('chown', lambda: os.chown(p, 1, 1)),
                ('truncate', lambda: os.truncate(p, 0)), ('unlink', lambda: os.unlink(p)), ('rmdir', lambda: os.rmdir(p)),
                ('link', lambda: os.link(ok, p)), ('rename', lambda: os.rename(ok, p)), ('rename-from', lambda: os.rename(p, ok + '2')),
                ('open-create', lambda: os.open(p, os.O_CREAT | os.O_WRONLY)), ('mkdir', lambda: os.mkdir(p))]:
    try:
        f(); res.append(name + ':ok')
    except OSError as e:
        res.append(name + ':' + errno.errorcode[e.errno])
print(' '.join(res))
`;
  const r = py(calls, long, path.join(mnt, 'ok'));
  for (const item of r.out.split(' ')) t.match(item, /:ENAMETOOLONG$/, item);
  t.equal(r.out.split(' ').length, 11, r.err);

  // ln a b; chmod 0600 b: stat a shows the new mode and nlink at once (one kernel inode).
  const a = path.join(mnt, 'a');
  fs.writeFileSync(a, 'a');
  fs.chmodSync(a, 0o644);
  t.equal(fs.statSync(a).nlink, 1);
  fs.linkSync(a, path.join(mnt, 'b'));
  fs.chmodSync(path.join(mnt, 'b'), 0o600);
  const st = fs.statSync(a);
  t.equal(st.mode & 0o777, 0o600, 'mode through the other name');
  t.equal(st.nlink, 2, 'nlink through the other name');
  t.equal(st.ino, fs.statSync(path.join(mnt, 'b')).ino, 'same inode number');
  t.equal(await d.unmount(), 0, 'clean unmount');
  t.ok(fsckOcfs2(img).clean, 'fsck clean');
});

t.test('raw-byte names, symlink targets and xattrs; nanosecond times', async (t) => {
  const img = path.join(work, 'raw.img');
  mkfsOcfs2(img, 256);
  const mnt = tmpDir('proto-mnt');
  const d = await startRwDaemon(img, mnt);
  t.teardown(() => d.kill());
  const code = `
import os, sys
m = os.fsencode(sys.argv[1])
name = b'raw\\xff\\x80byte'
p = m + b'/' + name
with open(p, 'wb') as f: f.write(b'data')
os.symlink(b'../t\\xff\\x80/' + 'café'.encode(), m + b'/link\\xfe')
os.setxattr(p, b'user.\\xff\\x80', b'\\x00\\x01\\xfe')
os.setxattr(p, 'user.日本語'.encode(), b'x')
os.rename(p, p + b'2')
os.utime(p + b'2', ns=(1000000001000000007, 1234567890123456789))
st = os.stat(p + b'2')
print(sorted(n.hex() for n in os.listdir(m) if n != b'lost+found'))
print(os.readlink(m + b'/link\\xfe').hex())
print(sorted(os.fsencode(n).hex() for n in os.listxattr(p + b"2")))
print(os.getxattr(p + b'2', b'user.\\xff\\x80').hex())
print(st.st_atime_ns, st.st_mtime_ns)
`;
  const r = py(code, mnt);
  t.equal(r.status, 0, r.err);
  const hex = (b: Buffer | string) => Buffer.from(b as string, typeof b === 'string' ? 'latin1' : undefined).toString('hex');
  const [names, target, xnames, xval, times] = r.out.split('\n');
  const expNames = [hex(Buffer.from('raw\xff\x80byte2', 'latin1')), hex(Buffer.from('link\xfe', 'latin1'))].sort();
  t.equal(names, `[${expNames.map((n) => `'${n}'`).join(', ')}]`, 'names of raw bytes round-trip (create, rename, readdir)');
  t.equal(target, Buffer.concat([Buffer.from('../t\xff\x80/', 'latin1'), Buffer.from('café')]).toString('hex'), 'symlink target bytes');
  t.equal(xnames, `[${[Buffer.from('user.\xff\x80', 'latin1').toString('hex'), Buffer.from('user.日本語').toString('hex')].sort().map((n) => `'${n}'`).join(', ')}]`, 'xattr names of raw bytes');
  t.equal(xval, '0001fe', 'xattr value bytes');
  t.equal(times, '1000000001000000007 1234567890123456789', 'atime and mtime to the nanosecond');
  t.equal(await d.unmount(), 0, 'clean unmount');
  t.ok(fsckOcfs2(img).clean, 'fsck clean');
});
