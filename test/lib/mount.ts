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

/**
 * Why dist/ cannot stand for src/ (not built, or a source changed after the
 * build read it), or null.  Tests never build: `make test` builds first, and
 * a test spawning the CLI refuses a stale dist/ rather than test an older
 * version than the library tests import from src/.
 */
export function staleBuild(): string | null {
  const stamp = path.join(REPO_ROOT, 'dist', '.build-start');
  if (!fs.existsSync(stamp) || !fs.existsSync(CLI)) return 'dist/ is not built: run make build';
  const built = fs.statSync(stamp).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built) newer.push(path.relative(REPO_ROOT, p));
    }
  };
  walk(path.join(REPO_ROOT, 'src'));
  return newer.length ? `dist/ is older than ${newer.slice(0, 3).join(', ')}: run make build` : null;
}
{
  const why = staleBuild();
  if (why) throw new Error(`the CLI under test (${CLI}) is stale: ${why}`);
}

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

/** Pid of the detached mount daemon serving `img` (started by this test with `CLI img mountpoint`), if running. */
export function daemonPid(img: string): number | undefined {
  const r = spawnSync('pgrep', ['-f', `${CLI} ${img} `], { encoding: 'utf8' });
  const pid = Number((r.stdout ?? '').trim().split('\n')[0]);
  return Number.isFinite(pid) && pid > 0 ? pid : undefined;
}

/**
 * After fusermount3 -u: wait for the detached daemon to finish (journal
 * checkpoint, slot release) and exit.  The deadline only bounds a hang and
 * it throws, so nothing (fsck, a remount) ever runs beside a live daemon.
 */
export function waitDaemonGone(img: string, timeoutMs = 180000): void {
  const end = Date.now() + timeoutMs;
  while (daemonPid(img) !== undefined) {
    if (Date.now() > end) throw new Error(`the daemon serving ${img} is still running ${timeoutMs} ms after the unmount`);
    spawnSync('sleep', ['0.1']);
  }
}

/** Run a shell command (always under timeout) and return stdout. */
export function sh(cmd: string, timeoutSec = 300): string {
  return execFileSync('timeout', [String(timeoutSec), 'bash', '-c', cmd], { encoding: 'utf8', maxBuffer: 256 << 20 });
}
