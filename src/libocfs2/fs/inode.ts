/**
 * Inode helpers for the write path: read-modify-write of a dinode inside a
 * transaction (always from the latest content, so changes made by the extent
 * tree in the same transaction are not lost), timestamps, link counts.
 */
import { CHECK_OFFSET } from '../blockcheck';
import { DinodeHeader, type DinodeHeaderT, setLinksCount } from '../structs/dinode';
import { OCFS2_LINKS_HI_SHIFT } from '../constants';
import type { Transaction } from '../txn';
import type { Volume } from '../volume';

export interface Ts { sec: number; nsec: number }

let lastNs = 0n;
/** The current time with nanoseconds, strictly increasing within the process. */
export function nowTs(): Ts {
  const ms = BigInt(Date.now());
  let ns = ms * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

export function setTime(h: DinodeHeaderT, which: 'a' | 'c' | 'm', t: Ts): void {
  if (which === 'a') { h.i_atime = t.sec; h.i_atime_nsec = t.nsec; }
  else if (which === 'c') { h.i_ctime = t.sec; h.i_ctime_nsec = t.nsec; }
  else { h.i_mtime = t.sec; h.i_mtime_nsec = t.nsec; }
}

export function linksOf(h: DinodeHeaderT): number {
  return (h.i_links_count | (h.i_links_count_hi << OCFS2_LINKS_HI_SHIFT)) >>> 0;
}

export function addLinks(h: DinodeHeaderT, delta: number): void {
  setLinksCount(h, Math.max(0, linksOf(h) + delta));
}

/** A private copy of an inode block and its decoded header. */
export async function loadInode(vol: Volume, blkno: number): Promise<{ buf: Buffer; h: DinodeHeaderT }> {
  const buf = Buffer.from((await vol.readInode(blkno)).buf);
  return { buf, h: DinodeHeader.decode(buf, 0) };
}

/** Write back a copy made by loadInode (the header `h` wins over the bytes in buf). */
export function storeInode(tx: Transaction, blkno: number, buf: Buffer, h: DinodeHeaderT): void {
  DinodeHeader.encode(h, buf, 0);
  tx.writeMeta(blkno, buf, CHECK_OFFSET.dinode);
}

/** Read the latest content, let fn change header and/or block, write it back. */
export async function patchInode(
  vol: Volume, tx: Transaction, blkno: number, fn: (h: DinodeHeaderT, buf: Buffer) => void | Promise<void>,
): Promise<DinodeHeaderT> {
  const { buf, h } = await loadInode(vol, blkno);
  await fn(h, buf);
  storeInode(tx, blkno, buf, h);
  return h;
}
