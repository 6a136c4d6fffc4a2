/**
 * The Linux kernel replays a journal we left dirty: journaled changes
 * through openReadWrite's manager on a local-mode image, flushed (committed)
 * and then the writer stops before any checkpoint (as after kill -9: the
 * home blocks are stale, only the log has the changes).  One boot of the
 * kernel harness (../shared/kernel/run-local.sh) mounts the image, which
 * replays the journal; the guest reports what it sees, and afterwards the
 * host checks the replayed blocks, the journal state and fsck.ocfs2 -fn.
 * Skipped where the harness (qemu, kernel) is not available.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KERNEL_HARNESS_DIR, kernelHarnessMissing, requireJudge } from './lib/judges';
import { openReadWrite } from '../src/libocfs2/rwmount';
import { Volume } from '../src/libocfs2/volume';
import { CHECK_OFFSET } from '../src/libocfs2/blockcheck';
import { DinodeHeader } from '../src/libocfs2/structs/dinode';
import { lookupName } from '../src/libocfs2/directory';
import { JournalFile } from '../src/libocfs2/journal';
import { JBD2_MAGIC } from '../src/libocfs2/jbd2';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };
const RUN_LOCAL = path.join(KERNEL_HARNESS_DIR, 'run-local.sh');

const MTIME = 981173106; // 2001-02-03 04:05:06 UTC

t.test('kernel mount replays the journal we left dirty', async (t) => {
  if (!requireJudge(t, kernelHarnessMissing())) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rwkernel-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'k.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 128 * 1024 * 1024);
  execFileSync('timeout', ['60', 'mkfs.ocfs2', '-q', '-F', '-M', 'local', '-N', '2', '-b', '4096', '-C', '4096', img], { env: SBIN, stdio: 'pipe' });

  const rv = await openReadWrite(img, { journalOptions: { commitIntervalMs: 0 } });
  const vol = rv.vol;
  const bs = vol.blockSize;
  const lf = (await lookupName(vol, await vol.readInode(vol.rootBlkno), Buffer.from('lost+found')))!.inode;
  const free0 = vol.dev.blockCount - 32;
  const patterns = new Map<number, Buffer>();
  for (let k = 1; k <= 30; k++) {
    await rv.tm.run(async (tx) => {
      const l = Buffer.from((await vol.readInode(lf)).buf);
      l.writeBigInt64LE(BigInt(MTIME + k), DinodeHeader.offsetOf('i_mtime'));
      if (k === 7) l.writeUInt16LE((l.readUInt16LE(DinodeHeader.offsetOf('i_mode')) & ~0o7777) | 0o700, DinodeHeader.offsetOf('i_mode'));
      tx.writeMeta(lf, l, CHECK_OFFSET.dinode);
      const b = free0 + (k % 32);
      const p = Buffer.alloc(bs, k);
      if (k % 4 === 0) p.writeUInt32BE(JBD2_MAGIC, 0); // escaped in the log
      tx.writeMeta(b, p, null);
      patterns.set(b, p);
    });
    if (k % 10 === 0) await rv.tm.flush();
  }
  t.equal(rv.journal!.stats.checkpoints, 0, 'nothing checkpointed yet');
  t.ok(rv.journal!.stats.escapes > 0);
  rv.journal!.abandon(); // "kill -9": nothing more is written
  await vol.dev.close();

  // Home blocks are still stale: only the log has the changes.
  {
    const v = await Volume.open(img, { readOnly: true, dirtyJournal: 'ignore' });
    t.not(Number((await v.readInode(lf)).inode.mtime.sec), MTIME + 30, 'lost+found mtime not yet home');
    t.ok((await v.journalStates()).find((j) => j.slot === 0)!.dirty, 'journal left dirty');
    await v.close();
  }

  const script = path.join(dir, 'guest.sh');
  fs.writeFileSync(script, [
    'set -e',
    'mount -t ocfs2 /dev/vda /mnt',
    'echo "lf_mtime=$(gstat -c %Y /mnt/lost+found)"',
    'echo "lf_mode=$(gstat -c %a /mnt/lost+found)"',
    'touch /mnt/kernel-was-here',
    'umount /mnt',
    'dmesg | grep -i -E "ocfs2|jbd2" | tail -20',
    '',
  ].join('\n'));
  const r = spawnSync('timeout', ['300', RUN_LOCAL, img, script], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  t.equal(r.status, 0, `guest script ran:\n${out}`);
  t.match(out, new RegExp(`lf_mtime=${MTIME + 30}\\b`), 'the kernel sees the last flushed transaction');
  t.match(out, /lf_mode=700\b/, 'and the chmod of lost+found');

  const v = await Volume.open(img, { readOnly: true, dirtyJournal: 'refuse' });
  t.teardown(() => v.close());
  t.equal(Number((await v.readInode(lf)).inode.mtime.sec), MTIME + 30, 'replayed inode on disk');
  for (const [b, p] of patterns) {
    if (!(await v.dev.readBlocks(b, 1)).equals(p)) t.fail(`block ${b} not replayed (or not unescaped) by the kernel`);
  }
  t.notOk((await v.journalStates()).some((j) => j.dirty), 'kernel left the journal clean');
  t.equal((await JournalFile.open(v, 0)).sb.s_start, 0);
  const f = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { env: SBIN, encoding: 'utf8' });
  const fo = `${f.stdout}${f.stderr}`;
  t.equal(f.status, 0, fo);
  t.notMatch(fo, /Skipping journal replay|\[[A-Z_]+\]/, 'fsck clean');
});
