/**
 * The JBD2 writer on a mkfs.ocfs2 image: synthetic transactions through
 * openReadWrite's JournaledTransactionManager; debugfs.ocfs2 logdump decodes
 * what we logged (descriptors, escaped blocks, revokes, commits); after a
 * clean close the journal is empty and clean and fsck.ocfs2 -fn is clean.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openReadWrite } from '../src/libocfs2/rwmount';
import { Volume } from '../src/libocfs2/volume';
import { JournalFile } from '../src/libocfs2/journal';
import { CHECK_OFFSET } from '../src/libocfs2/blockcheck';
import { DinodeHeader } from '../src/libocfs2/structs/dinode';
import { JBD2_MAGIC } from '../src/libocfs2/jbd2';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };

function mkfs(dir: string, extra: string[] = []): string {
  const img = path.join(dir, 'v.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 128 * 1024 * 1024);
  execFileSync('timeout', ['60', 'mkfs.ocfs2', '-q', '-F', '-M', 'local', '-N', '2', '-b', '4096', '-C', '4096', ...extra, img], { env: SBIN, stdio: 'pipe' });
  return img;
}

function fsck(img: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { env: SBIN, encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function logdump(img: string, slot: number): string {
  return execFileSync('timeout', ['60', 'debugfs.ocfs2', '-R', `logdump ${slot}`, img], { env: SBIN, encoding: 'utf8' });
}

/** A block of the free tail of the volume with recognisable content. */
function pattern(bs: number, blkno: number, version: number, magic: boolean): Buffer {
  const b = Buffer.alloc(bs, (blkno + version) & 0xff);
  b.writeUInt32BE(magic ? JBD2_MAGIC : 0x4f434653, 0);
  b.writeUInt32LE(blkno, 8);
  b.writeUInt32LE(version, 12);
  return b;
}

t.test('synthetic transactions: logdump decodes them, clean close is fsck-clean', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jw-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = mkfs(dir);
  const rv = await openReadWrite(img, { journalOptions: { commitIntervalMs: 0 } });
  const vol = rv.vol;
  const bs = vol.blockSize;
  t.equal(rv.slot, 0);
  const states = await vol.journalStates();
  t.ok(states.find((s) => s.slot === 0)!.dirty, 'our journal is marked dirty while mounted');

  const free0 = vol.dev.blockCount - 64; // the last 64 blocks are free on a fresh 128 MiB volume
  const root = vol.rootBlkno;
  const expected = new Map<number, Buffer>();
  let escapes = 0;
  for (let k = 1; k <= 40; k++) {
    await rv.tm.run(async (tx) => {
      const { buf } = await vol.readInode(root);
      const c = Buffer.from(buf);
      c.writeBigInt64LE(BigInt(1_000_000 + k), DinodeHeader.offsetOf('i_atime'));
      tx.writeMeta(root, c, CHECK_OFFSET.dinode);
      for (let j = 0; j < 3; j++) {
        const b = free0 + ((k * 7 + j * 13) % 64);
        const magic = (k + j) % 5 === 0;
        if (magic) escapes++;
        const p = pattern(bs, b, k, magic);
        tx.writeMeta(b, p, null);
        expected.set(b, p);
      }
      if (k % 6 === 0) {
        const b = free0 + ((k * 7) % 64);
        tx.forget(b);
        expected.delete(b);
      }
    });
    if (k % 10 === 0) await rv.tm.flush();
  }
  // Reads see the journaled content before any checkpoint.
  const { inode } = await vol.readInode(root);
  t.equal(Number(inode.atime.sec), 1_000_040, 'reads see the newest journaled inode');
  t.ok(rv.journal!.stats.commits >= 4, `several commits (${rv.journal!.stats.commits})`);
  t.ok(rv.journal!.stats.escapes > 0, 'some blocks needed escaping');

  const dump = logdump(img, 0);
  const commits = (dump.match(/Commit Block/gi) ?? []).length;
  t.ok(commits >= 1, `logdump shows commit blocks (${commits})`);
  t.match(dump, /Journal Descriptor/i, 'logdump shows descriptor blocks');
  t.match(dump, /JBD2_FLAG_ESCAPE/, 'logdump shows escaped blocks');
  t.match(dump, /Revoke Block/i, 'logdump shows revoke blocks');
  t.match(dump, /Feature Incompat: \d+ revoke/, 'REVOKE feature set before the first revoke record');
  t.match(dump, new RegExp(`Fs Block ${root}\\b|Blknum: ${root}\\b|\\b${root}\\b`), 'logdump names the root inode block');

  await rv.close();
  // Home locations hold the final content.
  const v2 = await Volume.open(img, { readOnly: true, dirtyJournal: 'refuse' });
  for (const [b, p] of expected) {
    const got = await v2.dev.readBlocks(b, 1);
    if (!got.equals(p)) t.fail(`block ${b} does not hold its last journaled content`);
  }
  const st = await v2.journalStates();
  t.notOk(st.some((s) => s.dirty), 'no journal dirty after close');
  const jf = await JournalFile.open(v2, 0);
  t.equal(jf.sb.s_start, 0, 'journal marked empty (s_start = 0)');
  t.equal((await v2.readInode(root)).inode.atime.sec, 1_000_040);
  await v2.close();
  const f = fsck(img);
  t.equal(f.status, 0, f.out);
  t.notMatch(f.out, /Skipping journal replay/);
  t.notMatch(f.out, /\[[A-Z_]+\]/, 'fsck reports no problem');
});

t.test('an aborted handle leaves nothing behind; big handles are split into several commits', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jw-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = mkfs(dir, ['-J', 'size=4M']);
  const rv = await openReadWrite(img, { journalOptions: { commitIntervalMs: 0 } });
  const vol = rv.vol;
  const bs = vol.blockSize;
  const root = vol.rootBlkno;
  const before = Buffer.from((await vol.readInode(root)).buf);
  await t.rejects(rv.tm.run(async (tx) => {
    const c = Buffer.from(before);
    c.writeBigInt64LE(123n, DinodeHeader.offsetOf('i_atime'));
    tx.writeMeta(root, c, CHECK_OFFSET.dinode);
    throw new Error('boom');
  }), /boom/);
  t.ok((await vol.readInode(root)).buf.equals(before), 'reads see the old inode again');
  await rv.tm.flush();
  t.equal(rv.journal!.stats.commits, 0, 'nothing was committed');

  // 1023-block log: a quarter is ~255 blocks; 600 handles of 2 blocks each wrap the log several times.
  // The last 500 blocks: free, and after the second cluster group's descriptor (block 32256).
  const free0 = vol.dev.blockCount - 500;
  for (let k = 0; k < 600; k++) {
    await rv.tm.run(async (tx) => {
      tx.writeMeta(free0 + (k % 500), pattern(bs, free0 + (k % 500), k, false), null);
      tx.writeMeta(free0 + ((k * 7) % 500), pattern(bs, free0 + ((k * 7) % 500), k, true), null);
    });
  }
  t.ok(rv.journal!.stats.commits >= 3, `size-triggered commits (${rv.journal!.stats.commits})`);
  t.ok(rv.journal!.stats.checkpoints >= 1, `low log space triggered checkpoints (${rv.journal!.stats.checkpoints})`);
  t.ok(rv.journal!.logUsed < 1023, 'log never overruns its tail');
  await rv.close();
  const f = fsck(img);
  t.equal(f.status, 0, f.out);
  t.notMatch(f.out, /\[[A-Z_]+\]/);
});
