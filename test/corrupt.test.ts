/**
 * Bad input for the read-only mount: corrupted copies of real images give a
 * clear one-line error naming the block and the failed check (at mount, or
 * EIO on the affected file only), never a crash, a hang or wrong data; a
 * file that is not OCFS2 gives a clear error.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { copyOfImage, readManifest } from './lib/refimages';
import { mountRo, runCli, sh, tmpDir } from './lib/mount';

const work = tmpDir('corrupt');
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

/** Field values from `debugfs.ocfs2 -R "stat PATH"`. */
function debugfsStat(img: string, p: string): string {
  return sh(`debugfs.ocfs2 -R "stat ${p}" ${img} 2>/dev/null`, 60);
}
function inodeBlock(img: string, p: string): number {
  return Number(/Inode: (\d+)/.exec(debugfsStat(img, p))![1]);
}
function firstRecordBlock(img: string, p: string): number {
  // The first line of the extent table: "0  0  504  48642"
  const m = /## Offset.*\n\s*\d+\s+\d+\s+\d+\s+(\d+)/.exec(debugfsStat(img, p));
  return Number(m![1]);
}
function blockSize(img: string): number {
  return 2 ** Number(/Block Size Bits: (\d+)/.exec(sh(`debugfs.ocfs2 -R stats ${img} 2>/dev/null`, 60))![1]);
}
function poke(img: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(img, 'r+');
  try { fs.writeSync(fd, bytes, 0, bytes.length, offset); } finally { fs.closeSync(fd); }
}
function flipBit(img: string, offset: number, bit: number): void {
  const fd = fs.openSync(img, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ (1 << bit);
    fs.writeSync(fd, b, 0, 1, offset);
  } finally { fs.closeSync(fd); }
}
/** Read a file through the mount from a separate process: exit status and stderr. */
function catFile(p: string): { status: number; stderr: string } {
  const r = spawnSync('timeout', ['60', 'cat', p], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stderr: r.stderr };
}
function logOf(m: { mountpoint: string }): string {
  const log = path.join(path.dirname(m.mountpoint), `${path.basename(m.mountpoint)}.log`);
  return fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
}
function md5Of(p: string): string {
  return sh(`md5sum '${p}' | cut -d' ' -f1`).trim();
}
const manifest = new Map(readManifest('local-4k').map((r) => [r.path, r]));

t.test('not an OCFS2 volume: random data, zero length, a directory, a missing path', async (t) => {
  const rnd = path.join(work, 'random.img');
  fs.writeFileSync(rnd, Buffer.alloc(4 << 20, 0x5a));
  const zero = path.join(work, 'zero.img');
  fs.writeFileSync(zero, '');
  const mnt = tmpDir('mnt-none');
  t.teardown(() => fs.rmdirSync(mnt));
  for (const [dev, want] of [[rnd, /not an OCFS2 volume/], [zero, /too small/], [work, /is a directory/], [path.join(work, 'nope'), /no such file/i]] as const) {
    const r = runCli(['-o', 'ro', dev, mnt], 60);
    t.not(r.status, 0, `${path.basename(dev)}: non-zero exit`);
    t.match(r.stderr, want, `${path.basename(dev)}: clear error`);
    t.notMatch(r.stderr, /\n\s+at /, `${path.basename(dev)}: no stack trace`);
  }
});

t.test('superblock signature damaged: refused at mount', async (t) => {
  const img = copyOfImage('local-4k', work);
  poke(img, 2 * 4096, Buffer.from('XXXXXX'));
  const mnt = tmpDir('mnt-sb');
  t.teardown(() => fs.rmdirSync(mnt));
  const r = runCli(['-o', 'ro', img, mnt], 60);
  t.not(r.status, 0);
  t.match(r.stderr, /not an OCFS2 volume/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('a damaged dinode: EIO on that file only, error names the block', async (t) => {
  const img = copyOfImage('local-4k', work);
  const bs = blockSize(img);
  const blk = inodeBlock(img, '/random-1m.bin');
  poke(img, blk * bs, Buffer.from('BADNODE'));
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const r = catFile(`${m.mountpoint}/random-1m.bin`);
  t.not(r.status, 0, 'cat fails');
  t.match(r.stderr, /Input\/output error/);
  t.match(logOf(m), new RegExp(`block ${blk}: dinode signature mismatch`), 'daemon log names block and check');
  t.equal(md5Of(`${m.mountpoint}/big/pattern-8m.bin`), manifest.get('/big/pattern-8m.bin')!.md5, 'other files read fine');
});

t.test('a damaged extent block: EIO on that file, others fine', async (t) => {
  const img = copyOfImage('local-4k', work);
  const bs = blockSize(img);
  const eb = firstRecordBlock(img, '/frag/holes.bin'); // depth 1: the root points at extent blocks
  poke(img, eb * bs, Buffer.from('GARBAGE'));
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const r = catFile(`${m.mountpoint}/frag/holes.bin`);
  t.not(r.status, 0, 'cat fails');
  t.match(logOf(m), new RegExp(`block ${eb}: extent block signature mismatch`));
  t.equal(md5Of(`${m.mountpoint}/frag/ileave-a.bin`), manifest.get('/frag/ileave-a.bin')!.md5, 'other files read fine');
});

t.test('a damaged directory block: EIO listing that directory only', async (t) => {
  const img = copyOfImage('local-4k', work);
  const bs = blockSize(img);
  const db = firstRecordBlock(img, '/d3000');
  poke(img, db * bs + 8, Buffer.from([0, 0])); // rec_len of "." = 0
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  const r = spawnSync('timeout', ['60', 'ls', `${m.mountpoint}/d3000`], { encoding: 'utf8' });
  t.not(r.status, 0, 'ls fails');
  t.match(r.stderr, /Input\/output error/);
  t.match(logOf(m), new RegExp(`block ${db}: `), 'log names the directory block');
  t.equal(sh(`ls ${m.mountpoint}/d5 | wc -l`).trim(), '5', 'other directories list fine');
});

t.test('a damaged group descriptor: reported at mount, statfs EIO, files still read', async (t) => {
  const img = copyOfImage('local-4k', work);
  const bs = blockSize(img);
  const out = sh(`debugfs.ocfs2 -R "stat //global_bitmap" ${img} 2>/dev/null`);
  // Chain records: "##   Total  Used  Free  Block#" then "1    32256  7759  24497  32256".
  const gd = Number(/##\s+Total\s+Used\s+Free\s+Block#\n\s*0\s+\d+\s+\d+\s+\d+\s+\d+\n\s*1\s+\d+\s+\d+\s+\d+\s+(\d+)/.exec(out)![1]);
  t.ok(gd > 0, `the head of chain 1 is at ${gd}`);
  poke(img, gd * bs, Buffer.from('NOTAGRP'));
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  t.match(m.stderr, new RegExp(`global bitmap: block ${gd}: group descriptor signature mismatch`));
  const df = spawnSync('timeout', ['30', 'df', m.mountpoint], { encoding: 'utf8' });
  t.not(df.status, 0, 'df fails');
  t.equal(md5Of(`${m.mountpoint}/random-1m.bin`), manifest.get('/random-1m.bin')!.md5, 'files still read');
});

t.test('metaecc: one flipped bit is corrected, two are reported with the block number', async (t) => {
  const img = copyOfImage('cluster-1k-64k-max', work);
  const bs = blockSize(img);
  const want = readManifest('cluster-1k-64k-max').find((r) => r.path === '/random-1m.bin')!.md5;
  const blk = inodeBlock(img, '/random-1m.bin');
  const blk2 = inodeBlock(img, '/hard-c');
  flipBit(img, blk * bs + 0x150, 3); // one bit in the extent list area
  flipBit(img, blk2 * bs + 0x20, 0); // two bits in i_size
  flipBit(img, blk2 * bs + 0x21, 5);
  const m = mountRo(img);
  t.teardown(() => m.unmount());
  t.equal(md5Of(`${m.mountpoint}/random-1m.bin`), want, 'single-bit error corrected, data right');
  const r = spawnSync('timeout', ['30', 'stat', `${m.mountpoint}/hard-c`], { encoding: 'utf8' });
  t.not(r.status, 0, 'stat of the double-bit inode fails');
  t.match(r.stderr, /Input\/output error/);
  t.match(logOf(m), new RegExp(`block ${blk2}: block check \\(crc32\\) mismatch`));
  t.equal(sh(`readlink ${m.mountpoint}/links/fast`).trim(), '../small/s100', 'the rest reads fine');
});
