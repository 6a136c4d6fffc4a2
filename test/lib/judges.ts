/**
 * The one policy for a missing judge (the kernel harness, qemu, root, loop
 * devices, network namespaces, an outside tool, the reference images): the
 * test is skipped with the reason outside CI, and fails with the reason under
 * CI (CI=true), whose machine can run every judge.  test/run-tests.sh lists
 * the reasons above its summary line and counts the skips apart.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Test } from 'tap';
import { REPO_ROOT } from './refimages';

/** The folder beside the repository with the kernel harness (OCFS2_FUSE_SHARED overrides, e.g. to hide it). */
export const SHARED_DIR = process.env.OCFS2_FUSE_SHARED ?? path.resolve(REPO_ROOT, '..', 'shared');
/** The qemu kernel harness (KH_HOME overrides). */
export const KERNEL_HARNESS_DIR = process.env.KH_HOME ?? path.join(SHARED_DIR, 'kernel');

export function underCi(): boolean {
  return /^(1|true|yes)$/i.test(process.env.CI ?? '');
}


/**
 * Call first in a test (or at the top of a file).  `missing` is why a judge
 * cannot run, or null/false when it can.  Returns true when the test may go
 * on; otherwise the test is already skipped (outside CI) or failed (CI).
 */
export function requireJudge(t: Test, missing: string | null | false | undefined): boolean {
  if (!missing) return true;
  if (underCi()) {
    t.fail(`judge missing under CI (CI=true): ${missing}`);
    return false;
  }
  t.plan(0, `judge missing: ${missing}`);
  return false;
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, '_', cmd], {
    env: { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` }, stdio: 'ignore',
  }).status === 0;
}

/** Why these commands cannot be run (not on PATH, /sbin included), or null. */
export function toolsMissing(...cmds: string[]): string | null {
  const gone = cmds.filter((c) => !onPath(c));
  return gone.length ? `not installed: ${gone.join(', ')}` : null;
}

export function rootMissing(): string | null {
  return process.getuid?.() === 0 ? null : 'needs root';
}

/** Why `losetup --direct-io=on` cannot give us a loop device, or null. */
export function loopDevicesMissing(): string | null {
  const r = rootMissing() ?? toolsMissing('losetup');
  if (r) return `loop devices: ${r}`;
  if (!fs.existsSync('/dev/loop-control')) return 'loop devices: /dev/loop-control is missing';
  return null;
}

let harnessChecked: string | null | undefined;
/**
 * Why the qemu kernel harness cannot boot, or null once it is built
 * (build.sh is idempotent: a few seconds once built; checked once per file).
 */
export function kernelHarnessMissing(): string | null {
  if (harnessChecked !== undefined) return harnessChecked;
  const runLocal = path.join(KERNEL_HARNESS_DIR, 'run-local.sh');
  if (!fs.existsSync(runLocal)) harnessChecked = `kernel harness not found at ${KERNEL_HARNESS_DIR} (set KH_HOME)`;
  else if (!onPath('qemu-system-x86_64')) harnessChecked = 'qemu-system-x86_64 not installed (make deps)';
  else {
    const b = spawnSync('timeout', ['900', path.join(KERNEL_HARNESS_DIR, 'build.sh')], { encoding: 'utf8' });
    harnessChecked = b.status === 0 ? null
      : `kernel harness build failed (${b.status}): ${(b.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
  }
  return harnessChecked;
}

/**
 * The seed of a randomized test: OCFS2_TEST_SEED when set (to replay a
 * failure), else the test's default; printed as a comment either way.
 */
export function testSeed(t: Test, fallback: number): number {
  const seed = process.env.OCFS2_TEST_SEED !== undefined ? Number(process.env.OCFS2_TEST_SEED) : fallback;
  t.comment(`seed ${seed} (OCFS2_TEST_SEED=${seed} replays it)`);
  return seed;
}
