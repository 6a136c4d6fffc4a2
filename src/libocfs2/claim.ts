/**
 * Exclusive access to a volume on this host: one writer, or any number of
 * readers, never both.  Every tool takes a claim before it opens a volume:
 * the mount (writer, or reader with -o ro), mkfs (writer), check -y (writer),
 * check -n (reader).
 *
 *   const claim = VolumeClaim.acquire(dev, { mode: 'write', tool: 'mount', mountpoint });
 *   ...
 *   claim.release();
 *
 * What is locked:
 *  - an image file: flock(2) on the file (LOCK_EX for a writer, LOCK_SH for
 *    a reader);
 *  - a block device: flock on the device node, and a writer also opens it
 *    with O_EXCL, so that the kernel refuses us while the device is mounted
 *    or claimed by another exclusive opener, and refuses them while we hold
 *    it (blkdev_open: O_EXCL claims the bdev, as mkfs.ocfs2 and a kernel
 *    mount do);
 *  - a loop device: also its backing file (/sys/block/loopN/loop/backing_file),
 *    so that two loop devices over one file, or the file and a loop device
 *    over it, exclude each other.
 * flock locks belong to the open file description, so the kernel drops them
 * when the holder dies: a crashed mount never leaves a stale lock.
 *
 * Who holds it: each claim writes a small record (pid, tool, mode, device,
 * mount point) under the runtime directory, named after the locked file's
 * st_dev and st_ino; a refusal names the live holders found there, else the
 * pid from /proc/locks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDirectIo } from '../native/directio';
import { defaultRuntimeDir } from '../cluster/stack';
import { Ocfs2Error, VolumeBusyError } from './errors';

export { VolumeBusyError };

export type ClaimMode = 'write' | 'read';

export interface ClaimHolder {
  pid: number;
  tool: string;
  mode: ClaimMode;
  device: string;
  mountpoint?: string;
}

export interface ClaimOptions {
  mode: ClaimMode;
  /** What takes the claim: 'mount', 'mkfs', 'check'. */
  tool: string;
  mountpoint?: string;
}


/** One holder as a phrase: "mounted read-write on /mnt/x by pid 123". */
export function describeHolder(h: ClaimHolder): string {
  if (h.tool === 'mount') {
    return `mounted ${h.mode === 'write' ? 'read-write' : 'read-only'}${h.mountpoint ? ` on ${h.mountpoint}` : ''} by pid ${h.pid}`;
  }
  return `in use by ${h.tool}${h.mode === 'write' ? ' (writing)' : ''}, pid ${h.pid}`;
}

/** Directory of the holder records: under the node stacks' runtime directory. */
function recordDir(): string {
  return path.join(defaultRuntimeDir(), 'locks');
}

function keyOf(st: fs.Stats): string { return `${st.dev}-${st.ino}`; }

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Holders recorded for a locked file (dead ones are removed). */
function recordedHolders(key: string): ClaimHolder[] {
  const dir = recordDir();
  let names: string[] = [];
  try { names = fs.readdirSync(dir); } catch { return []; }
  const out: ClaimHolder[] = [];
  for (const n of names) {
    if (!n.startsWith(`${key}.`)) continue;
    const file = path.join(dir, n);
    try {
      const h = JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder;
      if (h.pid !== process.pid && pidAlive(h.pid)) out.push(h);
      else if (h.pid !== process.pid) fs.rmSync(file, { force: true });
    } catch { /* a record being written or removed */ }
  }
  return out;
}

/** Pids holding a flock on (dev, ino) according to /proc/locks. */
function flockPids(st: fs.Stats): number[] {
  let text = '';
  try { text = fs.readFileSync('/proc/locks', 'utf8'); } catch { return []; }
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & 0xfff00);
  const out: number[] = [];
  for (const line of text.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"
    const f = line.trim().split(/\s+/);
    if (f[1] !== 'FLOCK') continue;
    const id = f[5]?.split(':');
    if (!id || id.length !== 3) continue;
    if (parseInt(id[0]!, 16) === major && parseInt(id[1]!, 16) === minor && Number(id[2]) === st.ino) out.push(Number(f[4]));
  }
  return out;
}

/** The backing file of a whole loop device, or undefined. */
export function loopBackingFile(st: fs.Stats): string | undefined {
  if (!st.isBlockDevice()) return undefined;
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00);
  try {
    const f = fs.readFileSync(`/sys/dev/block/${major}:${minor}/loop/backing_file`, 'utf8').trim();
    return f.length ? f : undefined;
  } catch {
    return undefined;
  }
}

interface Held { fd: number; key: string; record?: string }

export class VolumeClaim {
  private released = false;

  private constructor(readonly device: string, readonly mode: ClaimMode, private readonly held: Held[]) {}

  /**
   * Lock the volume at `device` for `mode`, or throw VolumeBusyError naming
   * who holds it.  Synchronous: nothing else may run between the checks.
   */
  static acquire(device: string, opts: ClaimOptions): VolumeClaim {
    let st: fs.Stats;
    try { st = fs.statSync(device); } catch (e) { throw new Ocfs2Error(`${device}: ${(e as Error).message}`); }
    const targets: { file: string; excl: boolean }[] = [];
    if (st.isBlockDevice()) {
      targets.push({ file: device, excl: opts.mode === 'write' });
      const backing = loopBackingFile(st);
      if (backing) targets.push({ file: backing, excl: false });
    } else if (st.isFile()) {
      targets.push({ file: device, excl: false });
    } else if (st.isDirectory()) {
      throw new Ocfs2Error(`${device}: is a directory, not a device or image file`);
    } else {
      throw new Ocfs2Error(`${device}: not a regular file or block device`);
    }
    const io = loadDirectIo();
    const held: Held[] = [];
    const undo = (): void => { for (const h of held) VolumeClaim.drop(h); };
    const holder: ClaimHolder = {
      pid: process.pid, tool: opts.tool, mode: opts.mode, device: path.resolve(device),
      ...(opts.mountpoint ? { mountpoint: path.resolve(opts.mountpoint) } : {}),
    };
    for (const t of targets) {
      let fd: number;
      let tst: fs.Stats;
      try {
        fd = fs.openSync(t.file, fs.constants.O_RDONLY);
        tst = fs.fstatSync(fd);
      } catch (e) {
        undo();
        throw new Ocfs2Error(`${t.file}: ${(e as Error).message}`);
      }
      const key = keyOf(tst);
      if (!io.flock(fd, opts.mode === 'write')) {
        fs.closeSync(fd);
        undo();
        throw VolumeClaim.busy(device, t.file, key, tst, opts.mode);
      }
      held.push({ fd, key });
      if (t.excl) {
        // The kernel's own exclusivity: a mounted or otherwise claimed device refuses O_EXCL with EBUSY.
        try {
          held.push({ fd: fs.openSync(t.file, fs.constants.O_RDONLY | fs.constants.O_EXCL), key });
        } catch (e) {
          undo();
          if ((e as NodeJS.ErrnoException).code === 'EBUSY') {
            throw new VolumeBusyError(`${device} is in use (mounted, or opened exclusively by another program)`, []);
          }
          throw new Ocfs2Error(`${t.file}: ${(e as Error).message}`);
        }
      }
    }
    // Records after every lock is held: a refused competitor then finds them.
    const dir = recordDir();
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const h of held) {
        if (h.record) continue;
        const file = path.join(dir, `${h.key}.${process.pid}.json`);
        if (held.some((x) => x.record === file)) continue;
        fs.writeFileSync(file, JSON.stringify(holder));
        h.record = file;
      }
    } catch { /* the records only improve messages */ }
    return new VolumeClaim(device, opts.mode, held);
  }

  private static busy(device: string, file: string, key: string, st: fs.Stats, mode: ClaimMode): VolumeBusyError {
    let holders = recordedHolders(key);
    if (!holders.length) {
      holders = flockPids(st).filter((p) => p !== process.pid)
        .map((pid) => ({ pid, tool: 'another program', mode: 'write' as const, device: file }));
    }
    // A reader is refused only by a writer, a writer by anyone.
    const relevant = mode === 'read' ? holders.filter((h) => h.mode === 'write') : holders;
    const shown = relevant.length ? relevant : holders;
    const via = path.resolve(file) !== path.resolve(device) ? ` (through ${file})` : '';
    const who = shown.length ? shown.map((h) => describeHolder(h)).join('; ') : 'in use by another program';
    return new VolumeBusyError(`${device} is ${who}${via}`, shown);
  }

  private static drop(h: Held): void {
    if (h.record) fs.rmSync(h.record, { force: true });
    try { fs.closeSync(h.fd); } catch { /* already closed */ }
  }

  /** Give the volume back (idempotent). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const h of this.held) VolumeClaim.drop(h);
  }
}
