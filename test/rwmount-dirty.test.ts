/**
 * openReadWrite on the kernel-made dirty journal (reference image
 * dirty-journal-4k, o2cb cluster mode, slot 0 dirty after a sysrq-b reset):
 * the journal is replayed to disk, the slot's local alloc / truncate log
 * recovered, and after a clean close fsck.ocfs2 -fn is clean without
 * "Skipping journal replay", the journal is clean, the slot map is empty,
 * ij_recovery_generation was bumped, and the manifest's files (metadata of
 * /synced-b exists only in the journal) read back with the read-only code.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyOfImage, readManifest } from './lib/refimages';
import { openReadWrite, chooseSlot } from '../src/libocfs2/rwmount';
import { Volume, type InodeBlock } from '../src/libocfs2/volume';
import { lookupName } from '../src/libocfs2/directory';
import { readFile, readSymlink } from '../src/libocfs2/fileio';
import { JournalFile } from '../src/libocfs2/journal';
import { readId1Journal } from '../src/libocfs2/structs/dinode';
import { decodeSlotMap } from '../src/libocfs2/structs/slotmap';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };

function fsck(img: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { env: SBIN, encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

async function resolve(vol: Volume, p: string): Promise<InodeBlock> {
  let cur = await vol.readInode(vol.rootBlkno);
  for (const part of p.split('/').filter(Boolean)) {
    const e = await lookupName(vol, cur, Buffer.from(part, 'latin1'));
    if (!e) throw new Error(`${p}: ${part} not found`);
    cur = await vol.readInode(e.inode);
  }
  return cur;
}

t.test('chooseSlot follows ocfs2_find_slot', async (t) => {
  t.equal(chooseSlot([null, 3, null], 3), 1, 'the slot already holding our node');
  t.equal(chooseSlot([null, 3, null], 0, 2), 2, 'the preferred slot when free');
  t.equal(chooseSlot([5, 3, null], 0, 1), 2, 'else the first free one');
  t.throws(() => chooseSlot([5, 3], 0), { name: 'PosixError' });
});

t.test('kernel-made dirty journal replayed by openReadWrite', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rwdirty-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = copyOfImage('dirty-journal-4k', dir);

  const before = await Volume.open(img, { readOnly: true, dirtyJournal: 'ignore' });
  const jstate = (await before.journalStates()).find((j) => j.slot === 0)!;
  t.ok(jstate.dirty, 'slot 0 starts dirty');
  const gen0 = readId1Journal((await before.readInode(jstate.blkno)).buf).ij_recovery_generation;
  await before.close();

  const warnings: string[] = [];
  const rv = await openReadWrite(img, { warn: (m) => warnings.push(m), heartbeatWaitMs: 2100 });
  t.equal(rv.slot, 0, 'node 0 takes its slot 0 back');
  t.match(warnings.join('\n'), /replayed the journal of slot\(s\) 0/);
  t.same(rv.orphanSlots, [0], 'slot 0 orphans left for the fs layer');
  // Mounted: our journal is marked in use.
  t.ok((await rv.vol.journalStates()).find((j) => j.slot === 0)!.dirty, 'journal dirty while mounted');
  await rv.close();

  const f = fsck(img);
  t.equal(f.status, 0, 'fsck.ocfs2 -fn exit 0');
  t.notMatch(f.out, /Skipping journal replay/, 'no journal left to replay');
  t.notMatch(f.out, /\[[A-Z_]+\]/, `fsck reports no problem:\n${f.out}`);

  const vol = await Volume.open(img, { readOnly: true, dirtyJournal: 'refuse' });
  t.teardown(() => vol.close());
  const js = (await vol.journalStates()).find((j) => j.slot === 0)!;
  t.notOk(js.dirty, 'journal clean after close');
  t.equal(readId1Journal((await vol.readInode(js.blkno)).buf).ij_recovery_generation, (gen0 + 1) >>> 0, 'ij_recovery_generation bumped');
  const jf = await JournalFile.open(vol, 0);
  t.equal(jf.sb.s_start, 0, 'log empty');
  const smBuf = await readFile(vol, await vol.readInode(vol.systemFile('slot_map')), 0, 4096);
  t.same(decodeSlotMap(smBuf, vol.maxSlots, vol.extendedSlotMap), [null, null, null, null], 'slot map empty after close');

  const rows = readManifest('dirty-journal-4k');
  t.ok(rows.length >= 10);
  for (const r of rows) {
    const f = await resolve(vol, r.path);
    if ((f.inode.mode & 0o7777) !== parseInt(r.mode, 8)) t.fail(`${r.path}: mode ${(f.inode.mode & 0o7777).toString(8)} != ${r.mode}`);
    if (f.inode.nlink !== r.nlink) t.fail(`${r.path}: nlink ${f.inode.nlink} != ${r.nlink}`);
    if (r.type === 'f') {
      const data = await readFile(vol, f, 0, f.inode.size);
      t.equal(createHash('md5').update(data).digest('hex'), r.md5, `${r.path} content`);
    } else if (r.type === 'l') {
      t.equal((await readSymlink(vol, f)).toString('latin1'), r.target, `${r.path} target`);
    } else {
      t.equal(f.inode.size, r.size, `${r.path} size`);
    }
  }
});
