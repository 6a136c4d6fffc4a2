/**
 * Open a volume for the filesystem operations.  Until the journaled
 * read-write mount (rwmount.ts) and the real allocators are wired in, this
 * writes in place (DirectTransactionManager) with the stopgap allocator.
 */
import { Volume } from '../volume';
import { DirectTransactionManager } from '../txn';
import { StopgapAllocators, StopgapExtentTree } from './stopgap';
import type { RwVolumeLike } from './types';

export interface FsVolume extends RwVolumeLike {
  close(): Promise<void>;
}

export async function openFsVolume(devPath: string, opts: { cacheBytes?: number; slot?: number; warn?: (m: string) => void } = {}): Promise<FsVolume> {
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
