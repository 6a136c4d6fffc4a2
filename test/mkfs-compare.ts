/**
 * Helpers for the mkfs tests: run Debian's mkfs.ocfs2 and ours with the same
 * arguments on sparse images, and describe both volumes through
 * debugfs.ocfs2 (stats, "ls -l //", "stat" of every system file, root and
 * lost+found) with volume-specific values (uuid, generation, times, checks,
 * dx seeds, hash) normalised away, so the two descriptions can be diffed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const SBIN = '/usr/sbin:/sbin:/usr/bin:/bin';
// Without tap's loader hooks (NODE_OPTIONS): they reject tools/mkfs.ocfs2's ".ocfs2" "extension".
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH ?? ''}:${SBIN}` };
delete env.NODE_OPTIONS;

export interface Case {
  name: string;
  sizeBytes: number;
  args: string[];
}

export function run(cmd: string, args: string[], input?: string, timeoutSec = 300): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('timeout', [String(timeoutSec), cmd, ...args], { encoding: 'utf8', env, input, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function sparseImage(file: string, bytes: number): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
}

/** mkfs.ocfs2 (answers its cluster-mode prompt; its exit status is not trusted, see test/lib/o2cb-image.ts). */
export function refMkfs(file: string, args: string[]): void {
  const r = run('mkfs.ocfs2', ['-q', '-F', ...args, file], 'y\ny\ny\n');
  const probe = run('debugfs.ocfs2', ['-R', 'stats', file]);
  if (probe.status !== 0 || !/Revision/.test(probe.stdout)) {
    throw new Error(`mkfs.ocfs2 ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
}

export function fsckClean(file: string): { ok: boolean; out: string } {
  const r = run('fsck.ocfs2', ['-fn', file]);
  const out = r.stdout + r.stderr;
  return { ok: r.status === 0 && !/Skipping journal replay/.test(out) && /All passes succeeded/.test(out), out };
}

function debugfs(file: string, req: string): string {
  return run('debugfs.ocfs2', ['-R', req, file]).stdout;
}

/** Normalise what differs between any two formats of the same geometry. */
export function normalise(s: string): string {
  return s
    .replace(/(Generation|FS Generation): \d+ \(0x[0-9a-f]+\)/g, '$1: G')
    .replace(/Generation: \d+/g, 'Generation: G')
    .replace(/UUID: [0-9A-F]+/g, 'UUID: U')
    .replace(/Hash: \d+ \(0x[0-9a-f]+\)/g, 'Hash: H')
    .replace(/DX Seeds: .*/g, 'DX Seeds: S')
    .replace(/CRC32: [0-9a-f]+ +ECC: [0-9a-f]+/g, 'CRC32: C ECC: C')
    .replace(/^\s*(ctime|atime|mtime|dtime): .*$/gm, '')
    .replace(/Last Check: .*/g, 'Last Check: T')
    .replace(/\d{1,2}-\w{3}-\d{4} \d\d:\d\d/g, 'DATE') // debugfs pads a one-digit day with a space
    .replace(/\n\s*\n/g, '\n');
}

/** A normalised description of a volume's layout through debugfs.ocfs2 (one batch run). */
export function describe(file: string): string {
  const ls = debugfs(file, 'ls -l //');
  const cmds = ['stats', 'ls -l //'];
  for (const line of ls.split('\n')) {
    const name = line.trim().split(/\s+/).pop();
    if (!name || name === '.' || name === '..') continue;
    cmds.push(`stat //${name}`);
  }
  cmds.push('ls -l /', 'stat /', 'stat /lost+found');
  const cmdFile = `${file}.cmds`;
  fs.writeFileSync(cmdFile, `${cmds.join('\n')}\n`);
  try {
    return normalise(run('debugfs.ocfs2', ['-f', cmdFile, file]).stdout);
  } finally {
    fs.rmSync(cmdFile, { force: true });
  }
}

/** First differing lines of two descriptions ('' when equal). */
export function diffText(a: string, b: string, max = 20): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(la.length, lb.length) && out.length < max; i++) {
    if (la[i] !== lb[i]) out.push(`@${i}\n  ref: ${la[i] ?? '<none>'}\n  our: ${lb[i] ?? '<none>'}`);
  }
  return out.join('\n');
}

export function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', `ocfs2-mkfs-${prefix}-`));
}
