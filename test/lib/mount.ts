/**
 * Test helpers for real FUSE mounts: run the ocfs2-fuse CLI (built into
 * dist/) in its own process, and always unmount in teardown.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './refimages';

export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ocfs2-fuse-${prefix}-`));
}

/** Run the CLI to completion (with a timeout); returns status and output. */
export function runCli(args: string[], timeoutSec = 120): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('timeout', [String(timeoutSec), process.execPath, CLI, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface Mounted {
  mountpoint: string;
  stderr: string;
  unmount(): void;
}

/** Mount `image` read-only at a fresh mount point; the daemon runs detached. */
export function mountRo(image: string, extra: string[] = []): Mounted {
  const mountpoint = tmpDir('mnt');
  const log = path.join(path.dirname(mountpoint), `${path.basename(mountpoint)}.log`);
  const r = spawnSync('timeout', ['120', process.execPath, CLI, '-o', 'ro', ...extra, image, mountpoint], {
    encoding: 'utf8', env: { ...process.env, OCFS2_FUSE_LOG: log },
  });
  if (r.status !== 0) {
    fs.rmdirSync(mountpoint);
    throw new Error(`mount of ${image} failed (${r.status}): ${r.stderr}`);
  }
  return {
    mountpoint,
    stderr: r.stderr,
    unmount(): void { unmount(mountpoint); try { fs.rmdirSync(mountpoint); } catch { /* still busy */ } },
  };
}

export function unmount(mountpoint: string): void {
  spawnSync('timeout', ['20', 'fusermount3', '-u', '-z', mountpoint], { stdio: 'ignore' });
}

/** Run a shell command (always under timeout) and return stdout. */
export function sh(cmd: string, timeoutSec = 300): string {
  return execFileSync('timeout', [String(timeoutSec), 'bash', '-c', cmd], { encoding: 'utf8', maxBuffer: 256 << 20 });
}
