/**
 * Helpers for the allocator / extent tree tests: volumes made with
 * mkfs.ocfs2 in a temp dir, fsck.ocfs2 -fn as the judge, and test file
 * inodes (claimed with claimInode, linked into lost+found) so that every
 * cluster we claim is owned by an inode fsck can see.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHECK_OFFSET } from '../src/libocfs2/blockcheck';
import { OCFS2_INLINE_DATA_FL, OCFS2_VALID_FL, S_IFREG } from '../src/libocfs2/constants';
import {
  DINODE_ID2_OFFSET, DinodeHeader, INLINE_DATA_OFFSET, extentRecsPerInode, inodeInlineData, writeInodeExtentList,
} from '../src/libocfs2/structs/dinode';
import { emptyExtentList } from '../src/libocfs2/structs/extent';
import { insertDirEntry, fileTypeOfMode } from '../src/libocfs2/structs/dir';
import { lookupName } from '../src/libocfs2/directory';
import type { Allocators, SubAlloc } from '../src/libocfs2/alloc';
import type { Transaction } from '../src/libocfs2/txn';
import type { Volume } from '../src/libocfs2/volume';

const SBIN = ['/sbin', '/usr/sbin'].filter((d) => !process.env.PATH?.split(':').includes(d));
export const ENV = { ...process.env, PATH: [process.env.PATH, ...SBIN].join(':') };

export function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Geometry { bs: number; cs: number; mb: number; slots?: number; features?: string; journalMb?: number }

/** A fresh volume made by mkfs.ocfs2 (local mount type, no cluster stack). */
export function mkfs(dir: string, g: Geometry, name = 'vol.img'): string {
  const img = path.join(dir, name);
  fs.rmSync(img, { force: true });
  fs.writeFileSync(img, '');
  fs.truncateSync(img, g.mb * 1024 * 1024);
  const args = ['60', 'mkfs.ocfs2', '-q', '-F', '-b', String(g.bs), '-C', String(g.cs), '-N', String(g.slots ?? 2),
    '-J', `size=${g.journalMb ?? 4}M`, '-M', 'local'];
  if (g.features) args.push(`--fs-features=${g.features}`);
  args.push(img);
  execFileSync('timeout', args, { env: ENV, stdio: 'pipe' });
  return img;
}

export function fsck(img: string): { status: number; out: string } {
  const r = spawnSync('timeout', ['300', 'fsck.ocfs2', '-fn', img], { env: ENV, encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

export function debugfs(img: string, req: string): string {
  const r = spawnSync('timeout', ['60', 'debugfs.ocfs2', '-R', req, img], { env: ENV, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/**
 * A new empty regular file (extent list, no clusters) linked as `name` in
 * lost+found (inline or first block of a non-indexed lost+found).
 */
export async function makeFile(vol: Volume, alloc: Allocators, tx: Transaction, name: string): Promise<SubAlloc> {
  const a = await alloc.claimInode(tx);
  const bs = vol.blockSize;
  const buf = Buffer.alloc(bs);
  const now = Math.floor(Date.now() / 1000);
  const h = DinodeHeader.decode(buf, 0);
  Object.assign(h, {
    i_signature: Buffer.from('INODE01\0', 'latin1'), i_generation: 0x1234 + a.blkno, i_suballoc_slot: a.suballocSlot,
    i_suballoc_bit: a.suballocBit, i_suballoc_loc: a.suballocLoc, i_links_count: 1, i_mode: S_IFREG | 0o644,
    i_flags: OCFS2_VALID_FL, i_atime: now, i_ctime: now, i_mtime: now, i_blkno: a.blkno,
    i_fs_generation: vol.sb.fsGeneration >>> 0, i_orphaned_slot: 0, i_dio_orphaned_slot: 0,
  });
  DinodeHeader.encode(h, buf, 0);
  writeInodeExtentList(buf, emptyExtentList(extentRecsPerInode(bs)));
  tx.writeMeta(a.blkno, buf, CHECK_OFFSET.dinode);

  const lf = await lookupName(vol, await vol.readInode(vol.rootBlkno), Buffer.from('lost+found'));
  if (!lf) throw new Error('no lost+found');
  const dir = await vol.readInode(lf.inode);
  const entry = { inode: a.blkno, fileType: fileTypeOfMode(S_IFREG), name: Buffer.from(name) };
  if (dir.inode.dynFeatures & OCFS2_INLINE_DATA_FL) {
    const dbuf = Buffer.from(dir.buf);
    const { count } = inodeInlineData(dbuf, lf.inode);
    if (insertDirEntry(dbuf, { blkno: lf.inode, start: INLINE_DATA_OFFSET, size: count }, entry) === undefined) {
      throw new Error('lost+found full');
    }
    tx.writeMeta(lf.inode, dbuf, CHECK_OFFSET.dinode);
  } else {
    throw new Error('test helper: only inline lost+found is supported');
  }
  void DINODE_ID2_OFFSET;
  return a;
}

/** Set i_clusters and i_size (= end of the last extent) of a test file. */
export async function setFileSize(vol: Volume, tx: Transaction, blkno: number, clusters: number, endCluster: number): Promise<void> {
  const buf = Buffer.from((await vol.readInode(blkno)).buf);
  const h = DinodeHeader.decode(buf, 0);
  h.i_clusters = clusters;
  h.i_size = endCluster * vol.clusterSize;
  DinodeHeader.encode(h, buf, 0);
  tx.writeMeta(blkno, buf, CHECK_OFFSET.dinode);
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
