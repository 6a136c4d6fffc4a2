/**
 * Loader for the O_DIRECT addon (src/native/directio.c).
 *
 * The heartbeat must not read through the host page cache: on real shared
 * storage another host's writes never reach this host's cache, so cached reads
 * would show stale heartbeat blocks.  Node has no aligned buffers, hence the
 * addon.  It is built by tools/build-native.sh (Makefile `native`/`build`); if
 * it is missing when first needed we build it once, synchronously.
 */
import { loadAddon } from './addon';

export interface DirectIo {
  /** open(2) with O_DIRECT (read-write when `writable`). Throws an Error with `.code`. */
  open(file: string, writable: boolean): number;
  close(fd: number): void;
  /** Logical sector size: BLKSSZGET for block devices, 512 for regular files. */
  sectorSize(fd: number): number;
  /** Aligned transfer of buf.length bytes (multiple of 512) at a 512-aligned offset, on a pool thread. */
  pread(fd: number, buf: Buffer, offset: number): Promise<number>;
  pwrite(fd: number, buf: Buffer, offset: number): Promise<number>;
  /** flock(2) with LOCK_NB, shared or exclusive: false when a conflicting lock is held elsewhere. */
  flock(fd: number, exclusive: boolean): boolean;
}

let cached: DirectIo | undefined;

export function loadDirectIo(): DirectIo {
  cached ??= loadAddon<DirectIo>('directio');
  return cached;
}
