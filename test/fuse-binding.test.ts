/**
 * src/fuse/binding.ts over the patched fuse-native, on a real FUSE mount:
 * the in-memory fs of test/fixtures/fuse-memfs.ts is served by a child
 * process; everything here touches the mount only from this process.
 */
import t from 'tap';
import { startMemfs, run, type MemfsServer } from './fixtures/fuse-helpers';
import { NS_FILE_TIMES, BIG_INO, MANY, FH_BASE, type LogEntry, type NodeInfo } from './fixtures/fuse-memfs';

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_APPEND = 0o2000;

function fmtNs(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

async function logOf(s: MemfsServer): Promise<LogEntry[]> {
  return (await s.request<{ log: LogEntry[] }>({ cmd: 'log' })).log;
}
async function nodeOf(s: MemfsServer, p: string): Promise<NodeInfo | null> {
  return (await s.request<{ node: NodeInfo | null }>({ cmd: 'node', path: p })).node;
}

t.test('memfs over the patched binding', async (t) => {
  const s = await startMemfs({
    options: ['attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0', 'use_ino', 'allow_other', 'fsname=memfs', 'subtype=memfs'],
  });
  t.teardown(() => s.cleanup());
  const m = (p: string) => `${s.mnt}${p}`;

  // Started first and checked last, so its 20 s overlap the other checks.
  const slow = run('cat', [m('/slow')], { timeoutSec: 60 });

  t.test('getattr: nanosecond times, 64-bit inode numbers, 64-bit statfs', async (t) => {
    const r = await run('stat', ['-c', '%.9X %.9Y %.9Z %i', m('/ns')]);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim(), `${fmtNs(NS_FILE_TIMES.atimeNs)} ${fmtNs(NS_FILE_TIMES.mtimeNs)} ${fmtNs(NS_FILE_TIMES.ctimeNs)} ${BIG_INO}`);
    const f = await run('stat', ['-f', '-c', '%b %f %c %d', s.mnt]);
    t.equal(f.stdout.trim(), `${2n ** 40n} ${2n ** 39n} 1000 500`, 'statfs counts beyond 2^32 survive');
  });

  t.test('touch -m / touch -a change only their own time (UTIME_OMIT reaches the fs)', async (t) => {
    const env = { TZ: 'UTC' };
    const mtime = BigInt(Date.UTC(2001, 1, 3, 4, 5, 6)) * 1_000_000n + 123_456_789n;
    let r = await run('touch', ['-m', '-d', '2001-02-03 04:05:06.123456789', m('/ns')], { env });
    t.equal(r.code, 0, r.stderr);
    let n = await nodeOf(s, '/ns');
    t.equal(n?.mtimeNs, mtime, 'mtime set to the nanosecond');
    t.equal(n?.atimeNs, NS_FILE_TIMES.atimeNs, 'atime untouched');
    let u = (await logOf(s)).filter((e) => e.op === 'utimens').at(-1);
    t.same([u?.atime, u?.mtime], ['omit', mtime]);
    t.equal((await run('stat', ['-c', '%.9Y', m('/ns')])).stdout.trim(), '981173106.123456789');

    const atime = BigInt(Date.UTC(2002, 2, 4, 5, 6, 7)) * 1_000_000n + 987_654_321n;
    r = await run('touch', ['-a', '-d', '2002-03-04 05:06:07.987654321', m('/ns')], { env });
    t.equal(r.code, 0, r.stderr);
    n = await nodeOf(s, '/ns');
    t.equal(n?.atimeNs, atime, 'atime set');
    t.equal(n?.mtimeNs, mtime, 'mtime untouched');
    u = (await logOf(s)).filter((e) => e.op === 'utimens').at(-1);
    t.same([u?.atime, u?.mtime], [atime, 'omit']);
  });

  t.test('a 1 MiB dd write arrives in requests larger than 4 KiB', async (t) => {
    const r = await run('dd', ['if=/dev/zero', `of=${m('/big')}`, 'bs=1M', 'count=1', 'conv=fsync']);
    t.equal(r.code, 0, r.stderr);
    const writes = (await logOf(s)).filter((e) => e.op === 'write' && e.path === '/big');
    const total = writes.reduce((a, e) => a + (e.length ?? 0), 0);
    const max = Math.max(...writes.map((e) => e.length ?? 0));
    t.equal(total, 1 << 20);
    t.ok(max > 4096, `largest write request ${max} bytes in ${writes.length} requests`);
    t.ok(max <= 128 * 1024, 'libfuse 2 caps a request at 128 KiB');
  });

  t.test('reads and writes beyond 4 GiB', async (t) => {
    const off = 5 * 2 ** 30;
    let r = await run('sh', ['-c', `printf hello | dd of=${m('/sparse')} bs=1 seek=${off} conv=notrunc status=none`]);
    t.equal(r.code, 0, r.stderr);
    const w = (await logOf(s)).filter((e) => e.op === 'write' && e.path === '/sparse');
    t.same(w.map((e) => [e.position, e.length]), [[off, 1], [off + 1, 1], [off + 2, 1], [off + 3, 1], [off + 4, 1]]);
    t.equal((await run('stat', ['-c', '%s', m('/sparse')])).stdout.trim(), String(off + 5));
    r = await run('dd', [`if=${m('/sparse')}`, 'bs=5', 'count=1', 'iflag=skip_bytes', `skip=${off}`, 'status=none']);
    t.equal(r.stdout, 'hello');
    const reads = (await logOf(s)).filter((e) => e.op === 'read' && e.path === '/sparse');
    t.ok(reads.some((e) => (e.position ?? 0) >= 2 ** 32), 'read offset above 2^32 reached the fs');
  });

  t.test('attr_timeout=0: a size changed behind the kernel is seen by the next stat', async (t) => {
    t.equal((await run('stat', ['-c', '%s', m('/coh')])).stdout.trim(), '10');
    await s.request({ cmd: 'setSize', path: '/coh', size: 12345 });
    t.equal((await run('stat', ['-c', '%s', m('/coh')])).stdout.trim(), '12345');
  });

  t.test('readdir with many entries, directory fh', async (t) => {
    const r = await run('ls', ['-f', m('/many')]);
    t.equal(r.stdout.split('\n').filter((l) => l.startsWith('entry-')).length, MANY);
    const log = await logOf(s);
    const od = log.filter((e) => e.op === 'opendir' && e.path === '/many').at(-1);
    const rd = log.filter((e) => e.op === 'readdir' && e.path === '/many').at(-1);
    t.ok(od && od.fh! >= FH_BASE, 'opendir fh above 2^32');
    t.equal(rd?.fh, od?.fh, 'readdir gets the fh opendir returned');
  });

  t.test('errors map to errno', async (t) => {
    t.match((await run('stat', [m('/nope')])).stderr, /No such file or directory/);
    t.match((await run('cat', [m('/eacces')])).stderr, /Permission denied/);
    t.match((await run('stat', [m('/eio')])).stderr, /Input\/output error/);
    t.match((await run('rmdir', [m('/nope')])).stderr, /No such file or directory/);
  });

  t.test('create gets flags and the caller; fh, ftruncate, fallocate, rename, xattrs', async (t) => {
    let r = await run('setpriv', ['--reuid=4242', '--regid=4343', '--clear-groups', 'touch', m('/owned')]);
    t.equal(r.code, 0, r.stderr);
    let log = await logOf(s);
    const c = log.find((e) => e.op === 'create' && e.path === '/owned');
    t.equal((c?.flags ?? -1) & O_ACCMODE, O_WRONLY, 'create flags');
    t.same([c?.ctx?.uid, c?.ctx?.gid], [4242, 4343], 'caller uid/gid');
    t.ok(c!.ctx!.pid > 0, 'caller pid');
    t.equal((await run('stat', ['-c', '%u %g', m('/owned')])).stdout.trim(), '4242 4343');

    r = await run('truncate', ['-s', '100', m('/owned')]);
    t.equal(r.code, 0, r.stderr);
    log = await logOf(s);
    const ft = log.filter((e) => e.op === 'ftruncate').at(-1);
    const op = log.filter((e) => e.op === 'open' && e.path === '/owned').at(-1);
    t.equal(ft?.length, 100);
    t.ok(op && op.fh! > FH_BASE && ft?.fh === op.fh, 'ftruncate gets the 64-bit fh open returned');

    r = await run('fallocate', ['-o', '4096', '-l', '8192', m('/owned')]);
    t.equal(r.code, 0, r.stderr);
    r = await run('fallocate', ['-p', '-o', '0', '-l', '4096', m('/owned')]);
    t.equal(r.code, 0, r.stderr);
    log = await logOf(s);
    t.same(log.filter((e) => e.op === 'fallocate').map((e) => [e.mode, e.position, e.length]), [[0, 4096, 8192], [3, 0, 4096]],
      'fallocate mode (KEEP_SIZE|PUNCH_HOLE = 3), offset, length');

    r = await run('sh', ['-c', `echo x >> ${m('/owned')}`]);
    t.equal(r.code, 0, r.stderr);
    const ap = (await logOf(s)).filter((e) => e.op === 'open' && e.path === '/owned').at(-1);
    t.ok(((ap?.flags ?? 0) & O_APPEND) !== 0, 'open flags carry O_APPEND');

    r = await run('mv', [m('/owned'), m('/moved')]);
    t.equal(r.code, 0, r.stderr);
    t.same((await logOf(s)).filter((e) => e.op === 'rename').at(-1), { op: 'rename', path: '/owned', to: '/moved' });

    r = await run('setfattr', ['-n', 'user.k', '-v', 'hello', m('/moved')]);
    t.equal(r.code, 0, r.stderr);
    t.equal((await run('getfattr', ['--only-values', '-n', 'user.k', m('/moved')])).stdout, 'hello');
    t.match((await run('getfattr', ['-d', m('/moved')])).stdout, /user\.k="hello"/);
    t.match((await run('getfattr', ['-n', 'user.none', m('/moved')])).stderr, /No such attribute/);
    r = await run('setfattr', ['-x', 'user.k', m('/moved')]);
    t.equal(r.code, 0, r.stderr);
    t.equal((await run('getfattr', ['-d', m('/moved')])).stdout, '');
  });

  t.test('an operation taking 20 s succeeds (no 15 s timeout)', async (t) => {
    const r = await slow;
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'done');
    t.ok(r.ms >= 19_000, `took ${r.ms} ms`);
  });
});
