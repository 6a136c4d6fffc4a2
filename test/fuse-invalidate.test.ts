/**
 * Kernel cache invalidation (FuseMount.invalidateInode / invalidateEntry /
 * notifyDelete) on a real mount: a file's bytes, its size and a directory's
 * entries are changed behind the kernel's back (the server's test hooks call
 * the filesystem layer directly, as another node will).  A reader holding an
 * already open descriptor, an mmap of the file, and cached stat / lookup
 * results keep the stale state (long cache timeouts, keep_cache) until the
 * invalidation, and see the new state at once after it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startFuseServer } from './lib/fuse-server';
import { mkfsOcfs2 } from './lib/rwdaemon';
import { tmpDir } from './lib/mount';

/** A python3 process that holds an open descriptor and an mmap of a file and reports what it sees. */
const OBSERVER = `
import os, sys, mmap, json
fd = os.open(sys.argv[1], os.O_RDONLY)
mm = mmap.mmap(fd, 4096, prot=mmap.PROT_READ)
base = os.path.dirname(sys.argv[1])
def exists(n):
    try:
        os.stat(os.path.join(base, n)); return True
    except FileNotFoundError:
        return False
for line in sys.stdin:
    names = line.split()
    out = {'pread': os.pread(fd, 4, 0).decode(), 'mmap': mm[0:4].decode(), 'size': os.fstat(fd).st_size,
           'statSize': os.stat(sys.argv[1]).st_size, 'exists': {n: exists(n) for n in names}}
    print(json.dumps(out), flush=True)
`;

interface Seen { pread: string; mmap: string; size: number; statSize: number; exists: Record<string, boolean> }

t.test('invalidation makes stale kernel caches see changes made behind the kernel', async (t) => {
  const work = tmpDir('inval');
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const img = path.join(work, 'v.img');
  mkfsOcfs2(img, 256);
  // Long timeouts: without an invalidation the kernel would keep what it has for a minute.
  const s = await startFuseServer(img, { attrTimeout: 60, entryTimeout: 60, negativeTimeout: 60, options: ['default_permissions'] });
  t.teardown(() => s.cleanup());
  const d = path.join(s.mnt, 'd');
  fs.mkdirSync(d);
  const f = path.join(d, 'f');
  fs.writeFileSync(f, Buffer.alloc(4096, 'A'));
  fs.writeFileSync(path.join(d, 'h'), 'doomed');

  const py = spawn('timeout', ['120', 'python3', '-c', OBSERVER, f], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => { py.kill(); });
  let pyErr = '';
  py.stderr.on('data', (b: Buffer) => { pyErr += b.toString(); });
  const lines = createInterface({ input: py.stdout });
  const pending: Array<(l: string) => void> = [];
  lines.on('line', (l) => pending.shift()?.(l));
  const look = (): Promise<Seen> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`observer silent: ${pyErr}`)), 30_000);
    pending.push((l) => { clearTimeout(timer); resolve(JSON.parse(l) as Seen); });
    py.stdin.write('g h\n');
  });

  let seen = await look();
  t.same(seen, { pread: 'AAAA', mmap: 'AAAA', size: 4096, statSize: 4096, exists: { g: false, h: true } }, 'initial state cached by the kernel');

  // Behind the kernel: new bytes and a bigger size, a new name, a removed name.
  await s.request({ cmd: 'writeBehind', path: 'd/f', off: 0, hex: Buffer.alloc(6000, 'B').toString('hex') });
  await s.request({ cmd: 'createBehind', dir: 'd', name: 'g' });
  const { ino: hIno } = await s.request<{ ino: number }>({ cmd: 'unlinkBehind', dir: 'd', name: 'h' });

  seen = await look();
  t.same(seen, { pread: 'AAAA', mmap: 'AAAA', size: 4096, statSize: 4096, exists: { g: false, h: true } },
    'without invalidation: open fd, mmap, stat and lookups keep the stale state');

  const r1 = await s.request<{ r: number }>({ cmd: 'invalInode', path: 'd/f', off: 0, len: 0 });
  t.equal(r1.r, 0, 'invalidateInode answered 0');
  const r2 = await s.request<{ r: number }>({ cmd: 'invalEntry', dir: 'd', name: 'g' });
  t.equal(r2.r, 0, 'invalidateEntry answered 0');
  const r3 = await s.request<{ r: number }>({ cmd: 'notifyDelete', dir: 'd', name: 'h', ino: hIno });
  t.equal(r3.r, 0, 'notifyDelete answered 0');

  seen = await look();
  t.same(seen, { pread: 'BBBB', mmap: 'BBBB', size: 6000, statSize: 6000, exists: { g: true, h: false } },
    'after invalidation: the open fd, the mmap, fstat/stat and lookups see the new state');
  t.same(fs.readdirSync(d).sort(), ['f', 'g'], 'ls shows the new entries');

  py.stdin.end();
  await new Promise((r) => py.on('exit', r));
  const u = spawnSync('timeout', ['20', 'fusermount3', '-u', s.mnt], { encoding: 'utf8' });
  t.equal(u.status, 0, `fusermount3 -u: ${u.stderr}`);
  t.same(await s.unmounted, { external: true }, 'the server saw the unmount');
  const fsck = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` } });
  t.equal(fsck.status, 0, `fsck.ocfs2 -fn clean: ${fsck.stdout.slice(-400)}`);
});

t.test('an invalidation of what the kernel never cached is harmless', async (t) => {
  const work = tmpDir('inval2');
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const img = path.join(work, 'v.img');
  mkfsOcfs2(img, 256);
  const s = await startFuseServer(img, { options: ['default_permissions'] });
  t.teardown(() => s.cleanup());
  fs.writeFileSync(path.join(s.mnt, 'x'), 'x');
  const r = await s.request<{ r: number }>({ cmd: 'invalEntry', dir: '', name: 'never-looked-up' });
  t.ok(r.r === 0 || r.r === -2, `an entry the kernel never cached: ${r.r} (0 or -ENOENT)`);
  spawnSync('timeout', ['20', 'fusermount3', '-u', s.mnt]);
  await s.unmounted;
  t.pass('unmounted');
});
