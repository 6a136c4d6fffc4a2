/**
 * Loader for the O_DIRECT addon (src/native/directio.c).
 *
 * The heartbeat must not read through the host page cache: on real shared
 * storage another host's writes never reach this host's cache, so cached reads
 * would show stale heartbeat blocks.  Node has no aligned buffers, hence the
 * addon.  It is built by tools/build-native.sh (Makefile `native`/`build`); if
 * it is missing when first needed we build it once, synchronously.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

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

/** Repo root: this file lives in src/native (ts) or dist/src/native (compiled). */
function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'tools', 'build-native.sh'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
}

let cached: DirectIo | undefined;

export function loadDirectIo(): DirectIo {
  if (cached) return cached;
  const root = repoRoot();
  const addon = path.join(root, 'src', 'native', 'build', 'Release', 'directio.node');
  if (!fs.existsSync(addon)) {
    const r = spawnSync('bash', [path.join(root, 'tools', 'build-native.sh')], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0 || !fs.existsSync(addon)) {
      throw new Error(`directio addon missing and could not be built (run tools/build-native.sh): ${(r.stderr ?? '').trim()}`);
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached = require(addon) as DirectIo;
  return cached;
}
