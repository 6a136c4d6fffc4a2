/**
 * Damaged metadata from issue 16, each at the byte the issue names in the
 * reference images: the mount answers EIO quickly, naming the block holding
 * the bad field, other requests go on, and `check` reports what
 * fsck.ocfs2 -fn reports (same problem code).  Needs the CLI built.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { mountRo, runCli, tmpDir, sh } from './lib/mount';
import { copyOfImage, type ReferenceImage } from './lib/refimages';
import { fsckOcfs2, startRwDaemon } from './lib/rwdaemon';
import { openReadWrite } from '../src/libocfs2/rwmount';

const work = tmpDir('corrupt-meta');
t.teardown(() => { sh(`rm -rf ${work}`); });

function damaged(name: ReferenceImage, tag: string, edits: Array<[number, Buffer]>): string {
  const dir = path.join(work, tag);
  fs.mkdirSync(dir);
  const img = copyOfImage(name, dir);
  const fd = fs.openSync(img, 'r+');
  for (const [off, bytes] of edits) fs.writeSync(fd, bytes, 0, bytes.length, off);
  fs.closeSync(fd);
  return img;
}

/** A command against the mount from a child process: status, output and how long it took. */
function timed(cmd: string, sec = 30): { status: number; out: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync('timeout', [String(sec), 'bash', '-c', cmd], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, ms: Date.now() - t0 };
}

const codes = (out: string): string[] => [...new Set(out.split('\n').map((l) => /^\[([A-Z0-9_]+)\]/.exec(l)?.[1]).filter((c): c is string => !!c))];

t.test('case 2: symlink i_size 2^32-1 -> EIO at once naming block 51703 and i_size; the daemon keeps serving', async (t) => {
  const img = damaged('local-4k', 'sym', [[211775520, Buffer.from('ffffffff00000000', 'hex')]]);
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const log = `${m.mountpoint}.log`;
  const r = timed(`readlink -v ${m.mountpoint}/links/long-4000`);
  t.not(r.status, 0, 'readlink fails');
  t.match(r.out, /Input\/output error/, 'with EIO');
  t.ok(r.ms < 5000, `within 5 s (${r.ms} ms)`);
  const other = timed(`md5sum ${m.mountpoint}/big/pattern-8m.bin`);
  t.match(other.out, /26f8548a7190632b825572c628cd9966/, 'another file still reads');
  const text = fs.readFileSync(log, 'utf8');
  t.match(text, /block 51703: slow symlink i_size too large \(i_size 4294967295, max 4095\)/, 'log names block, field and bound');
  t.notMatch(text, /RangeError|\n\s+at /, 'no stack trace in the log');
  // 2^40: used to be a raw RangeError
  const img2 = damaged('local-4k', 'sym40', [[211775520, Buffer.from('0000000000010000', 'hex')]]);
  const m2 = mountRo(img2);
  t.teardown(() => m2.unmount());
  const r2 = timed(`readlink -v ${m2.mountpoint}/links/long-4000`);
  t.match(r2.out, /Input\/output error/, 'i_size 2^40: EIO');
  t.notMatch(fs.readFileSync(`${m2.mountpoint}.log`, 'utf8'), /RangeError|ERR_OUT_OF_RANGE/, 'no RangeError');
  t.match(fs.readFileSync(`${m2.mountpoint}.log`, 'utf8'), /block 51703: slow symlink i_size too large/, 'names the block');
  const c = runCli(['check', '-fn', img], 600);
  t.ok(codes(c.stdout).includes('LINK_SIZE'), `check reports LINK_SIZE as fsck.ocfs2 does\n${c.stdout}`);
});

t.test('case 2b: fast symlink i_size 65535 -> EIO naming the block; check reports LINK_SIZE', async (t) => {
  // /links/fast (a fast symlink) of local-4k: find it through inspect
  const pristine = copyOfImage('local-4k', fs.mkdtempSync(path.join(work, 'fast-')));
  const st = runCli(['inspect', pristine, 'stat', '/links/fast', '--json']);
  const ino = (JSON.parse(st.stdout) as { inode: number }).inode;
  t.ok(ino > 0, `fast symlink /links/fast is inode ${ino}`);
  const img = damaged('local-4k', 'fastsym', [[ino * 4096 + 0x20, Buffer.from('ffff000000000000', 'hex')]]);
  // fsck.ocfs2 refuses a mounted volume: both checkers first.
  const c = runCli(['check', '-fn', img], 600);
  const f = fsckOcfs2(img);
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const r = timed(`readlink -v ${m.mountpoint}/links/fast`);
  t.match(r.out, /Input\/output error/, 'EIO');
  t.match(fs.readFileSync(`${m.mountpoint}.log`, 'utf8'), new RegExp(`block ${ino}: fast symlink i_size too large`), 'log names block and field');
  // fsck.ocfs2 1.8 passes a fast symlink whose i_size exceeds its area; the mount cannot read it, so check reports it.
  t.notOk(codes(f.out).includes('LINK_SIZE'), 'fsck.ocfs2 -fn does not (its fast-symlink check is the target length only)');
  t.ok(codes(c.stdout).includes('LINK_SIZE'), `check reports LINK_SIZE\n${c.stdout}`);
});

t.test('case 3: overlapping extent record -> EIO naming extent block 48642, never zeros; check says EXTENT_OVERLAP', async (t) => {
  const img = damaged('local-4k', 'ext', [[199237712, Buffer.from('00000000', 'hex')]]);
  // fsck.ocfs2 refuses a mounted volume: both checkers first.
  const c = runCli(['check', '-fn', img], 600);
  const f = fsckOcfs2(img);
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const r = timed(`cat ${m.mountpoint}/frag/holes.bin | md5sum`);
  t.notMatch(r.out, /97b04aecdcef45ba7d3ee8c7f17f5bef/, 'not the original content');
  t.match(r.out, /Input\/output error/, 'reading fails with EIO');
  t.match(fs.readFileSync(`${m.mountpoint}.log`, 'utf8'), /block 48642: extent record 1 e_cpos: 0 before the end of record 0/, 'log names block, record, field');
  t.ok(codes(f.out).includes('EXTENT_OVERLAP'), `fsck.ocfs2 reports EXTENT_OVERLAP\n${f.out}`);
  t.ok(codes(c.stdout).includes('EXTENT_OVERLAP'), `check reports EXTENT_OVERLAP\n${c.stdout}`);
});

t.test('case 4: a truncate log record over a live file\'s clusters is not freed by a read-write mount', async (t) => {
  // truncate_log:0000 (block 32): tl_used 1, record {34625, 20}: clusters of /frag/holes.bin.
  const rec = Buffer.alloc(8); rec.writeUInt32LE(34625, 0); rec.writeUInt32LE(20, 4);
  const img = damaged('local-4k', 'tl', [[0x200c2, Buffer.from('0100', 'hex')], [0x200c8, rec]]);
  const before = codes(fsckOcfs2(img).out);
  const mnt = path.join(work, 'tl', 'mnt');
  fs.mkdirSync(mnt);
  const d = await startRwDaemon(img, mnt);
  t.teardown(async () => { if (d.proc.exitCode === null) await d.kill(); });
  // Allocate while mounted: freed clusters would be handed out and overwritten.
  sh(`dd if=/dev/urandom of=${mnt}/new.bin bs=1M count=8 conv=fsync 2>/dev/null`);
  t.match(sh(`md5sum ${mnt}/frag/holes.bin`), /97b04aecdcef45ba7d3ee8c7f17f5bef/, 'holes.bin intact while mounted');
  t.equal(await d.unmount(), 0, 'clean unmount');
  t.match(d.log(), /block 32: truncate log record 0 t_start 34625, t_clusters 20: clusters 34625-34644 belong to inode 16935: not freed/, 'log names the truncate log block, the record and the owner');
  const after = codes(fsckOcfs2(img).out);
  t.notOk(after.includes('CLUSTER_ALLOC_BIT'), `fsck.ocfs2: no CLUSTER_ALLOC_BIT (before: ${before.join(',')}; after: ${after.join(',')})`);
  t.same(after.filter((c) => !before.includes(c)), [], 'fsck.ocfs2 finds nothing new');
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  t.match(sh(`md5sum ${m.mountpoint}/frag/holes.bin`), /97b04aecdcef45ba7d3ee8c7f17f5bef/, 'holes.bin intact after remount');
});

t.test('case 5: a replayed block aimed at the superblock stops the replay; the mount refuses naming the journal block', async (t) => {
  // dirty-journal-4k: a descriptor tag's block number set to 2 (the superblock).
  const img = damaged('dirty-journal-4k', 'jr', [[2170916, Buffer.from('00000002', 'hex')]]);
  const before = fs.readFileSync(img).subarray(2 * 4096, 3 * 4096);
  // Read-only mount (replay in memory) through the CLI.
  const mro = path.join(work, 'jr', 'mro');
  fs.mkdirSync(mro);
  const r = runCli(['-o', 'ro', img, mro], 120);
  if (r.status === 0) sh(`fusermount3 -u -z ${mro}`);
  t.not(r.status, 0, 'read-only mount refused');
  t.match(r.stderr, /block 532: jbd2 replayed block fails the check of its home \(journal block 3 \(fs block 532\): transaction \d+, home fs block 2: superblock check failed/, 'names the journal block, its home and the failed check');
  // Read-write open (replay to disk), the mount's own path (a cluster-mode volume needs a cluster
  // configuration to be mounted read-write through the CLI).
  const err = await openReadWrite(img, { heartbeatWaitMs: 100 }).then(async (rv) => { await rv.close(); return null; }, (e: unknown) => e as Error);
  t.ok(err, 'read-write open refused');
  t.match(String(err?.message), /block 532: jbd2 replayed block fails the check of its home/, 'names the journal block');
  t.ok(fs.readFileSync(img).subarray(2 * 4096, 3 * 4096).equals(before), 'superblock untouched');
  t.notMatch(fsckOcfs2(img).out, /Bad magic/, 'fsck.ocfs2 still reads the superblock');
  // The same journal undamaged replays.
  const good = copyOfImage('dirty-journal-4k', fs.mkdtempSync(path.join(work, 'jrok-')));
  const rv = await openReadWrite(good, { heartbeatWaitMs: 100 });
  t.ok(rv.vol.recoveredSlots.length > 0, 'the undamaged journal replays');
  await rv.close();
});

t.test('case 6: check verifies dx leaf metaecc and dtime as fsck.ocfs2 does', async (t) => {
  // cluster-1k-64k-max, dx leaf block 362747: 'ff 7f' over its contents.
  const dx = damaged('cluster-1k-64k-max', 'dx', [[371453204, Buffer.from('ff7f', 'hex')]]);
  const c = runCli(['check', '-fn', dx], 600);
  t.match(c.stdout, /\[DX_TREE_MISSING\] Directory \d+ is missing index \(block 362747: block check \(crc32\) mismatch/, 'the dx leaf CRC failure is reported, naming the block');
  // local-4k, /links/fast (inode 51701): i_dtime 1.
  const dt = damaged('local-4k', 'dtime', [[51701 * 4096 + 0x48, Buffer.from('01', 'hex')]]);
  const f = fsckOcfs2(dt);
  const ours = runCli(['check', '-fn', dt], 600);
  t.ok(codes(f.out).includes('INODE_NZ_DTIME'), 'fsck.ocfs2 reports INODE_NZ_DTIME');
  t.ok(codes(ours.stdout).includes('INODE_NZ_DTIME'), 'check reports INODE_NZ_DTIME');
});

t.test('case 7: log lines name the block holding the bad field, the field and the check', async (t) => {
  // local-4k /links is inline in inode block 51700; the entry "long-300" has its name at 211763460.
  const nul = damaged('local-4k', 'nul', [[211763460 + 4, Buffer.from('00', 'hex')]]);
  const c = runCli(['check', '-fn', nul], 600);
  t.match(c.stdout, /\[DIRENT_NAME_CHARS\] Directory entry at offset \d+ of block 51700 in directory 51700: name holds a NUL at byte 4/, 'check reports DIRENT_NAME_CHARS naming the block');
  const m = mountRo(nul);
  t.teardown(() => m.unmount());
  const ls = timed(`ls ${m.mountpoint}/links`);
  t.match(ls.out, /long-4000/, 'the other entries are listed');
  t.notMatch(ls.out, /long-300/, 'the bad one is not');
  t.match(fs.readFileSync(`${m.mountpoint}.log`, 'utf8'), /block 51700: directory entry at offset \d+ of directory 51700 \(inode \d+\): name holds a NUL at byte 4: entry skipped/, 'log names the block, the entry and the check');
  // Its inode field (12 bytes before the name) pointing outside the volume: the error names block 51700, not the pointer.
  const far = Buffer.alloc(8); far.writeBigUInt64LE(2550706913n);
  const ptr = damaged('local-4k', 'ptr', [[211763460 - 12, far]]);
  const m2 = mountRo(ptr);
  t.teardown(() => m2.unmount());
  const st = timed(`stat ${m2.mountpoint}/links/long-300`);
  t.match(st.out, /Input\/output error/, 'stat: EIO');
  t.match(fs.readFileSync(`${m2.mountpoint}.log`, 'utf8'), /block 51700: directory entry inode 2550706913 outside the volume/, 'log names the block holding the entry');
});
