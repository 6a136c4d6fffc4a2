/**
 * ENOSPC only when the space is really gone (issue 16, case 1): clusters
 * freed into the truncate log or held in the local alloc window are
 * reclaimed before a write fails, as ocfs2_reserve_clusters does
 * (ocfs2_try_to_free_truncate_log, then the local alloc disabled and the
 * global bitmap tried).  Through a real read-write FUSE mount.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, sh } from './lib/mount';
import { startRwDaemon, mkfsOcfs2, fsckOcfs2, detach } from './lib/rwdaemon';

const work = tmpDir('enospc');
t.teardown(() => { sh(`rm -rf ${work}`); });

/** Write `bytes` to `file` from a child process; returns how much got written and the error text. */
function writeFile(file: string, bytes: number, bs = 4096): { written: number; err: string } {
  const out = sh(`dd if=/dev/urandom of=${file} bs=${bs} count=${bytes / bs} conv=fsync 2>&1; stat -c %s ${file} 2>/dev/null || echo 0`, 120);
  const lines = out.trim().split('\n');
  return { written: Number(lines[lines.length - 1]), err: /No space left/.test(out) ? 'ENOSPC' : '' };
}

t.test('64 MiB volume: fill, delete three 4 MiB files, the freed space is usable', async (t) => {
  const img = path.join(work, 'v.img');
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt);
  mkfsOcfs2(img, 64);
  const d = await startRwDaemon(img, mnt);
  t.teardown(async () => { if (d.proc.exitCode === null) { await d.kill(); } detach(mnt); });
  let n = 0;
  for (; n < 40; n++) {
    const r = writeFile(path.join(mnt, `f${n}`), 4 << 20, 1 << 20);
    if (r.err) break;
  }
  t.ok(n > 3 && n < 40, `filled the volume with ${n} whole 4 MiB files before ENOSPC`);
  for (const i of [0, 1, 2]) fs.rmSync(path.join(mnt, `f${i}`));
  sh(`sync -f ${mnt}`);
  const st = fs.statfsSync(mnt);
  t.ok(st.bfree * st.bsize >= 12 << 20, `statfs: ${(st.bfree * st.bsize) >> 20} MiB free after deleting three files`);
  const small = writeFile(path.join(mnt, 'small'), 16 << 10);
  t.equal(small.written, 16 << 10, '16 KiB write');
  const big = writeFile(path.join(mnt, 'big'), 64 << 10);
  t.equal(big.written, 64 << 10, `64 KiB write (${big.err || 'no error'})`);
  const more = writeFile(path.join(mnt, 'more'), 8 << 20, 1 << 20);
  t.equal(more.written, 8 << 20, `then 8 MiB more (${more.err || 'no error'})`);
  t.equal(await d.unmount(), 0, 'clean unmount');
  const f = fsckOcfs2(img);
  t.ok(f.clean, `fsck.ocfs2 -fn clean\n${f.clean ? '' : f.out}`);
});
