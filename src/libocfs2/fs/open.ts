/**
 * Open a volume for the filesystem operations: the journaled read-write
 * mount (rwmount.ts: slot, JBD2 journal, Allocators) with helper-11's
 * ExtentTree, or — `stopgap: true`, for tests of the operations alone — in
 * place writes with the stopgap allocator of stopgap.ts.
 */
import { Volume } from '../volume';
import { DirectTransactionManager } from '../txn';
import { openReadWrite, type RwVolume } from '../rwmount';
import { ExtentTree } from '../extenttree';
import { StopgapAllocators, StopgapExtentTree } from './stopgap';
import type { RwVolumeLike } from './types';

export interface FsVolume extends RwVolumeLike {
  close(): Promise<void>;
  /** The underlying read-write mount (absent with the stopgap). */
  rw?: RwVolume;
}

export interface OpenFsOptions {
  cacheBytes?: number;
  slot?: number;
  /** Our node number on a cluster-mode volume (rwmount's `node`). */
  node?: number;
  /** Journal metadata (default true; rwmount only). */
  journal?: boolean;
  stopgap?: boolean;
  warn?: (m: string) => void;
}

export async function openFsVolume(devPath: string, opts: OpenFsOptions = {}): Promise<FsVolume> {
  if (!opts.stopgap) {
    const rw = await openReadWrite(devPath, { cacheBytes: opts.cacheBytes, slot: opts.slot, node: opts.node, journal: opts.journal, warn: opts.warn });
    const { vol, alloc } = rw;
    return {
      vol, slot: rw.slot, tm: rw.tm, alloc, rw,
      extentTree: (ino) => ExtentTree.forInode(vol, alloc, ino),
      close: () => rw.close(),
    };
  }
  const vol = await Volume.open(devPath, { readOnly: false, cacheBytes: opts.cacheBytes, warn: opts.warn });
  const slot = opts.slot ?? 0;
  const tm = new DirectTransactionManager(vol);
  const alloc = new StopgapAllocators(vol, slot);
  return {
    vol, slot, tm, alloc,
    extentTree: (ino) => new StopgapExtentTree(vol, ino),
    async close() { await tm.flush(); await vol.close(); },
  };
}
