/**
 * Typed, promise-based wrapper around the patched fuse-native 2.2.6
 * (patches/fuse-native-2.2.6.patch, built by tools/build-fuse-native.sh
 * against the system libfuse 2.9).  This is the only module that talks to
 * fuse-native; the rest of the project implements `Operations`.
 *
 * - Times are nanoseconds (bigint) or { sec, nsec }: OCFS2 keeps nanoseconds.
 * - utimens gets each time as a bigint, or 'now' / 'omit' (UTIME_NOW /
 *   UTIME_OMIT), so touch -a / touch -m / tar work.
 * - Errors thrown by operations go through errnoOf (src/libocfs2/errors.ts).
 * - No per-operation timeout unless opTimeoutMs is given (cluster locks may
 *   legitimately wait longer than fuse-native's old 15 s).
 * - SIGINT/SIGTERM unmount every mount and exit; an external
 *   `fusermount -u` is noticed (libfuse calls destroy) and reported.
 * - Paths and names are *binary strings* of their raw bytes (PATH_ENCODING,
 *   'latin1'): byte b is the char with code point b.  Convert with
 *   pathToBytes / bytesToName; never with 'utf8'.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { errnoOf, Ocfs2Error } from '../libocfs2/errors';

/**
 * How every path and name crosses the binding, in both directions: as a
 * binary string, one char (code point 0-255) per byte -- Node's 'latin1'.
 * File names on Linux, and in OCFS2 directories, are arbitrary bytes (only
 * '/' and NUL are excluded) and need not be UTF-8: the patched fuse-native
 * hands them over with napi_create_string_latin1 and takes names back
 * (readdir entries, readlink targets, listxattr names) with
 * napi_get_value_string_latin1, so every byte sequence round-trips exactly.
 * A UTF-8 name such as "café" therefore arrives as "cafÃ©" (its five bytes);
 * `bytesToName(Buffer.from('café'))` is the string to return for it.
 */
export const PATH_ENCODING: BufferEncoding = 'latin1';

/** True if every char of s is a byte (code point <= 0xFF): a valid binary string. */
export function isBinaryString(s: string): boolean {
  return !/[^\x00-\xff]/.test(s);
}

/**
 * The raw bytes of a path or name received from the binding.  Throws a
 * TypeError for a string that is not a binary string (a char above 0xFF
 * would otherwise be silently cut to its low byte).
 */
export function pathToBytes(p: string): Buffer {
  if (!isBinaryString(p)) throw new TypeError(`not a binary (${PATH_ENCODING}) string: ${JSON.stringify(p)}`);
  return Buffer.from(p, PATH_ENCODING);
}

/** The binary string the binding expects for a name (or path, or link target) of these bytes. */
export function bytesToName(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(PATH_ENCODING);
}

/**
 * A binary-string path for humans (logs, messages): valid UTF-8 is shown as
 * text, other bytes (and control characters) as \xHH, as the reference
 * manifests escape them.
 */
export function displayPath(p: string): string {
  const b = Buffer.from(p, PATH_ENCODING);
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x20 || c === 0x7f ? 0 : c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    const seq = n > 0 && i + n <= b.length ? b.subarray(i, i + n) : undefined;
    // A sequence is taken as text only if it decodes and re-encodes to the same bytes (no overlongs/surrogates).
    const text = seq?.toString('utf8');
    if (seq && text !== undefined && Buffer.from(text, 'utf8').equals(seq)) {
      out += text;
      i += n;
    } else {
      out += `\\x${c.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}

/** tv_nsec values of utimensat(2). */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

export const NS_PER_SEC = 1_000_000_000n;

/** A time as seconds + nanoseconds (sec may be negative, 0 <= nsec < 1e9). */
export interface Timespec { sec: number; nsec: number }

/** A timestamp: nanoseconds since the epoch, or a Timespec. */
export type FsTime = bigint | Timespec;

/** What utimens receives for each of atime and mtime. */
export type UtimeArg = bigint | 'now' | 'omit';

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  size: number | bigint;
  nlink: number;
  /** Shown to users only with the `use_ino` option (libfuse numbers nodes otherwise). */
  ino?: number | bigint;
  dev?: number;
  rdev?: number;
  blksize?: number;
  /** 512-byte units. */
  blocks?: number | bigint;
  atimeNs: FsTime;
  mtimeNs: FsTime;
  ctimeNs: FsTime;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number | bigint;
  bfree: number | bigint;
  bavail: number | bigint;
  files: number | bigint;
  ffree: number | bigint;
  favail: number | bigint;
  fsid?: number;
  flag?: number;
  namemax: number;
}

export interface DirEntry { name: string; stat?: Stat }

/** Who made the request (from fuse_get_context()). */
export interface RequestContext { uid: number; gid: number; pid: number; umask: number }

type R<T> = Promise<T> | T;

/**
 * Filesystem operations.  Paths are absolute within the mount ("/a/b").
 * Every path, name, link target and xattr name -- received or returned -- is
 * a binary string of the raw bytes (see PATH_ENCODING; use pathToBytes /
 * bytesToName).  Returned names that are not binary strings are rejected:
 * readdir drops such entries (and names that are empty or contain '/' or
 * NUL) and reports them to onOpError; readlink/listxattr fail with EIO.
 * File handles (fh) are whatever open/create/opendir returned (0 if nothing),
 * exact up to 2^53.  Offsets/sizes are numbers (exact up to 2^53).  Throw an
 * Ocfs2Error/PosixError (or anything with a Node `code`) to fail; it becomes
 * -errno via errnoOf.  Every operation also receives the request context.
 */
export interface Operations {
  init?(): R<void>;
  /** Called once when the session ends (our unmount or an external one). */
  destroy?(): R<void>;
  getattr(path: string, ctx: RequestContext): R<Stat>;
  fgetattr?(path: string, fh: number, ctx: RequestContext): R<Stat>;
  statfs?(path: string, ctx: RequestContext): R<StatFs>;
  access?(path: string, mode: number, ctx: RequestContext): R<void>;
  readdir?(path: string, fh: number, ctx: RequestContext): R<Array<string | DirEntry>>;
  opendir?(path: string, flags: number, ctx: RequestContext): R<number | void>;
  releasedir?(path: string, fh: number, ctx: RequestContext): R<void>;
  fsyncdir?(path: string, datasync: boolean, fh: number, ctx: RequestContext): R<void>;
  open?(path: string, flags: number, ctx: RequestContext): R<number | void>;
  create?(path: string, mode: number, flags: number, ctx: RequestContext): R<number | void>;
  /** Fill buf[0..length) from position; return the byte count (short = EOF). */
  read?(path: string, fh: number, buf: Buffer, length: number, position: number, ctx: RequestContext): R<number>;
  /** Write buf[0..length) at position; return the byte count. */
  write?(path: string, fh: number, buf: Buffer, length: number, position: number, ctx: RequestContext): R<number>;
  flush?(path: string, fh: number, ctx: RequestContext): R<void>;
  fsync?(path: string, datasync: boolean, fh: number, ctx: RequestContext): R<void>;
  release?(path: string, fh: number, ctx: RequestContext): R<void>;
  truncate?(path: string, size: number, ctx: RequestContext): R<void>;
  ftruncate?(path: string, fh: number, size: number, ctx: RequestContext): R<void>;
  /** mode is FALLOC_FL_* (KEEP_SIZE = 1, PUNCH_HOLE = 2, ...). */
  fallocate?(path: string, fh: number, mode: number, offset: number, length: number, ctx: RequestContext): R<void>;
  utimens?(path: string, atime: UtimeArg, mtime: UtimeArg, ctx: RequestContext): R<void>;
  /** null = leave unchanged (chown(2) with -1). */
  chown?(path: string, uid: number | null, gid: number | null, ctx: RequestContext): R<void>;
  chmod?(path: string, mode: number, ctx: RequestContext): R<void>;
  mknod?(path: string, mode: number, rdev: number, ctx: RequestContext): R<void>;
  readlink?(path: string, ctx: RequestContext): R<string>;
  symlink?(target: string, linkPath: string, ctx: RequestContext): R<void>;
  link?(existingPath: string, newPath: string, ctx: RequestContext): R<void>;
  unlink?(path: string, ctx: RequestContext): R<void>;
  mkdir?(path: string, mode: number, ctx: RequestContext): R<void>;
  rmdir?(path: string, ctx: RequestContext): R<void>;
  /** FUSE 2 has no rename flags: renameat2(RENAME_NOREPLACE/EXCHANGE) fails with EINVAL in the kernel. */
  rename?(from: string, to: string, ctx: RequestContext): R<void>;
  /** flags: XATTR_CREATE = 1, XATTR_REPLACE = 2 (Linux has no position). */
  setxattr?(path: string, name: string, value: Buffer, flags: number, ctx: RequestContext): R<void>;
  /** null = no such attribute (ENODATA). */
  getxattr?(path: string, name: string, ctx: RequestContext): R<Buffer | null>;
  listxattr?(path: string, ctx: RequestContext): R<string[]>;
  removexattr?(path: string, name: string, ctx: RequestContext): R<void>;
}

export interface MountOptions {
  /** Mount read-only (`ro`). */
  readOnly?: boolean;
  /** Raw libfuse/kernel -o options, e.g. 'attr_timeout=0', 'use_ino', 'allow_other'. */
  options?: string[];
  /** libfuse debug output on stderr. */
  debug?: boolean;
  /** Fail an operation with ETIMEDOUT after this many ms; 0/undefined = never. */
  opTimeoutMs?: number;
  /** Request big writes (default true): big_writes,max_write=131072 unless options set max_write. */
  bigWrites?: boolean;
  /** Unmount and exit on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /**
   * Called with any error an operation threw (e.g. for logging); the kernel
   * gets -errnoOf(err).  path is a binary string (displayPath for humans).
   */
  onOpError?: (op: string, path: string, err: unknown) => void;
}

/** libfuse 2 / the kernel's FUSE protocol 7.x cap a request at 32 pages. */
export const MAX_WRITE = 128 * 1024;

// ---- the untyped module, described once ----------------------------------

type Cb0 = (err: number) => void;
type Cb1<T> = (err: number, v?: T) => void;

interface RawStat {
  mode: number; uid: number; gid: number; size: number | bigint; dev: number;
  nlink: number; ino: number | bigint; rdev: number; blksize: number;
  blocks: number | bigint; atime: FsTime; mtime: FsTime; ctime: FsTime;
}
interface RawTimespec { sec: number; nsec: number }
interface RawOps {
  init(cb: Cb0): void;
  destroy(cb: Cb0): void;
  getattr(p: string, cb: Cb1<RawStat>): void;
  fgetattr?(p: string, fh: number, cb: Cb1<RawStat>): void;
  statfs?(p: string, cb: Cb1<StatFs>): void;
  access?(p: string, mode: number, cb: Cb0): void;
  readdir?(p: string, fh: number, cb: (err: number, names?: string[], stats?: RawStat[]) => void): void;
  opendir?(p: string, flags: number, cb: Cb1<number>): void;
  releasedir?(p: string, fh: number, cb: Cb0): void;
  fsyncdir?(p: string, datasync: number, fh: number, cb: Cb0): void;
  open?(p: string, flags: number, cb: Cb1<number>): void;
  create?(p: string, mode: number, flags: number, cb: Cb1<number>): void;
  read?(p: string, fh: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
  write?(p: string, fh: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
  flush?(p: string, fh: number, cb: Cb0): void;
  fsync?(p: string, datasync: number, fh: number, cb: Cb0): void;
  release?(p: string, fh: number, cb: Cb0): void;
  truncate?(p: string, size: number, cb: Cb0): void;
  ftruncate?(p: string, fh: number, size: number, cb: Cb0): void;
  fallocate?(p: string, fh: number, mode: number, offset: number, length: number, cb: Cb0): void;
  utimens?(p: string, atime: RawTimespec, mtime: RawTimespec, cb: Cb0): void;
  chown?(p: string, uid: number, gid: number, cb: Cb0): void;
  chmod?(p: string, mode: number, cb: Cb0): void;
  mknod?(p: string, mode: number, dev: number, cb: Cb0): void;
  readlink?(p: string, cb: Cb1<string>): void;
  symlink?(target: string, p: string, cb: Cb0): void;
  link?(from: string, to: string, cb: Cb0): void;
  unlink?(p: string, cb: Cb0): void;
  mkdir?(p: string, mode: number, cb: Cb0): void;
  rmdir?(p: string, cb: Cb0): void;
  rename?(from: string, to: string, cb: Cb0): void;
  setxattr?(p: string, name: string, value: Buffer, position: number, flags: number, cb: Cb0): void;
  getxattr?(p: string, name: string, position: number, cb: (err: number, v?: Buffer | null) => void): void;
  listxattr?(p: string, cb: Cb1<string[]>): void;
  removexattr?(p: string, name: string, cb: Cb0): void;
}
interface RawOptions {
  debug?: boolean;
  force?: boolean;
  mkdir?: boolean;
  timeout?: number | false;
  options?: string[];
}
interface RawFuse {
  context: RequestContext;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type RawFuseCtor = new (mnt: string, ops: RawOps, opts: RawOptions) => RawFuse;

let rawCtor: RawFuseCtor | undefined;
function loadFuseNative(): RawFuseCtor {
  if (!rawCtor) {
    // Throws if the patched build is missing (index.js checks the patch level).
    const m: unknown = require('fuse-native');
    if (typeof m !== 'function') throw new Error('fuse-native did not export a constructor');
    rawCtor = m as RawFuseCtor;
  }
  return rawCtor;
}

// ---- conversions ------------------------------------------------------------

/** Nanoseconds since the epoch for a Timespec or bigint. */
export function toNs(t: FsTime): bigint {
  return typeof t === 'bigint' ? t : BigInt(t.sec) * NS_PER_SEC + BigInt(t.nsec);
}

/** Timespec (nsec normalised to [0, 1e9)) for nanoseconds since the epoch. */
export function toTimespec(ns: bigint): Timespec {
  let sec = ns / NS_PER_SEC;
  let nsec = ns % NS_PER_SEC;
  if (nsec < 0n) { nsec += NS_PER_SEC; sec -= 1n; }
  return { sec: Number(sec), nsec: Number(nsec) };
}

function utimeArg(t: RawTimespec): UtimeArg {
  if (t.nsec === UTIME_NOW) return 'now';
  if (t.nsec === UTIME_OMIT) return 'omit';
  return BigInt(t.sec) * NS_PER_SEC + BigInt(t.nsec);
}

function rawStat(s: Stat): RawStat {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, dev: s.dev ?? 0,
    nlink: s.nlink, ino: s.ino ?? 0, rdev: s.rdev ?? 0, blksize: s.blksize ?? 4096,
    blocks: s.blocks ?? 0, atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs,
  };
}

const NO_ID = 0xffffffff;

// ---- the mount --------------------------------------------------------------

const activeMounts = new Set<FuseMount>();
let signalsInstalled = false;
let shuttingDown = false;

function onTerminationSignal(signal: NodeJS.Signals): void {
  if (shuttingDown) {
    // Second signal: give up waiting.
    process.exit(1);
  }
  shuttingDown = true;
  const mounts = [...activeMounts].filter((m) => m.handleSignals);
  Promise.allSettled(mounts.map((m) => m.unmount())).then((results) => {
    const failed = results.some((r) => r.status === 'rejected');
    if (failed) process.stderr.write(`fuse: unmount after ${signal} failed\n`);
    process.exit(failed ? 1 : 0);
  });
}

function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  process.on('SIGINT', onTerminationSignal);
  process.on('SIGTERM', onTerminationSignal);
}

function uninstallSignalHandlersIfIdle(): void {
  if (!signalsInstalled || [...activeMounts].some((m) => m.handleSignals)) return;
  signalsInstalled = false;
  process.off('SIGINT', onTerminationSignal);
  process.off('SIGTERM', onTerminationSignal);
}

export interface UnmountedEvent { external: boolean }

/**
 * One FUSE mount.  Events: 'unmounted' (UnmountedEvent) once the session has
 * ended, whether by unmount() or from outside (fusermount -u, umount).
 */
export class FuseMount extends EventEmitter {
  mountpoint = '';
  handleSignals = true;
  private raw: RawFuse | undefined;
  private state: 'idle' | 'mounting' | 'mounted' | 'unmounting' | 'unmounted' = 'idle';
  private unmounting: Promise<void> | undefined;
  private destroyed!: Promise<void>;
  private markDestroyed!: () => void;

  get mounted(): boolean { return this.state === 'mounted' || this.state === 'unmounting'; }

  /** Mounts ops at mountpoint; resolves once the kernel has completed INIT. */
  async mount(mountpoint: string, ops: Operations, opts: MountOptions = {}): Promise<void> {
    if (this.state !== 'idle') throw new Error(`FuseMount: already ${this.state}`);
    const options = buildOptions(opts);
    const Ctor = loadFuseNative();
    this.state = 'mounting';
    this.mountpoint = path.resolve(mountpoint);
    this.handleSignals = opts.handleSignals ?? true;
    this.destroyed = new Promise<void>((resolve) => { this.markDestroyed = resolve; });

    const raw = new Ctor(this.mountpoint, this.rawOps(ops, opts), {
      debug: opts.debug ?? false,
      force: true, // clear a stale (ENOTCONN) mount left by a crashed server
      timeout: opts.opTimeoutMs && opts.opTimeoutMs > 0 ? opts.opTimeoutMs : false,
      options,
    });
    this.raw = raw;
    try {
      await new Promise<void>((resolve, reject) => raw.mount((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.state = 'idle';
      this.raw = undefined;
      throw err;
    }
    this.state = 'mounted';
    activeMounts.add(this);
    if (this.handleSignals) installSignalHandlers();
  }

  /** Unmounts (lazily, like fusermount -u -z) and waits for destroy (at most 10 s). */
  unmount(): Promise<void> {
    if (this.state === 'unmounted' || this.state === 'idle') return Promise.resolve();
    if (!this.unmounting) {
      this.state = 'unmounting';
      this.unmounting = this.doUnmount(false);
    }
    return this.unmounting;
  }

  /** Resolves when the session has ended (by unmount() or from outside). */
  waitUnmounted(): Promise<void> {
    return this.state === 'unmounted' ? Promise.resolve() : new Promise((resolve) => this.once('unmounted', () => resolve()));
  }

  private async doUnmount(external: boolean): Promise<void> {
    const raw = this.raw;
    if (raw) {
      await new Promise<void>((resolve, reject) => raw.unmount((err) => (err ? reject(err) : resolve())));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.destroyed,
      new Promise<void>((resolve) => { timer = setTimeout(resolve, 10_000); }),
    ]);
    if (timer) clearTimeout(timer);
    this.finish(external);
  }

  private finish(external: boolean): void {
    if (this.state === 'unmounted') return;
    this.state = 'unmounted';
    activeMounts.delete(this);
    uninstallSignalHandlersIfIdle();
    this.emit('unmounted', { external } satisfies UnmountedEvent);
  }

  /** destroy from libfuse: the session is over.  If we did not ask, clean up. */
  private onDestroy(): void {
    this.markDestroyed();
    if (this.state === 'mounted') {
      this.state = 'unmounting';
      // Releases the native handles so the process may exit; fusermount's
      // failure on the now-unmounted path is ignored by the patched index.js.
      this.unmounting = this.doUnmount(true).catch(() => this.finish(true));
    }
  }

  private rawOps(ops: Operations, opts: MountOptions): RawOps {
    const self = this;
    const ctxOf = (): RequestContext => {
      const c = this.raw?.context;
      return c ? { uid: c.uid, gid: c.gid, pid: c.pid, umask: c.umask } : { uid: 0, gid: 0, pid: 0, umask: 0 };
    };
    const fail = (op: string, p: string, err: unknown): number => {
      if (opts.onOpError) {
        try { opts.onOpError(op, p, err); } catch { /* logging must not break replies */ }
      }
      const e = errnoOf(err);
      return -(e > 0 ? e : 5);
    };
    /** Runs fn and replies once: reply(0, value) or reply(-errno). */
    function run<T>(op: string, p: string, fn: () => R<T>, reply: (err: number, v?: T) => void): void {
      let result: R<T>;
      try {
        result = fn();
      } catch (err) {
        reply(fail(op, p, err));
        return;
      }
      Promise.resolve(result).then((v) => reply(0, v), (err: unknown) => reply(fail(op, p, err)));
    }
    /** For read/write-style replies, where the reply is a count or -errno. */
    function runCount(op: string, p: string, fn: () => R<number>, reply: (n: number) => void): void {
      run(op, p, fn, (err, n) => reply(err < 0 ? err : Math.max(0, Math.trunc(n ?? 0))));
    }

    const raw: RawOps = {
      init(cb) {
        run('init', '/', () => ops.init?.(), (err) => cb(err));
      },
      destroy(cb) {
        run('destroy', '/', () => ops.destroy?.(), (err) => {
          cb(err);
          self.onDestroy();
        });
      },
      getattr(p, cb) {
        const ctx = ctxOf();
        run('getattr', p, () => ops.getattr(p, ctx), (err, st) => (err || !st ? cb(err || -5) : cb(0, rawStat(st))));
      },
    };
    if (ops.fgetattr) {
      const f = ops.fgetattr.bind(ops);
      raw.fgetattr = (p, fh, cb) => {
        const ctx = ctxOf();
        run('fgetattr', p, () => f(p, fh, ctx), (err, st) => (err || !st ? cb(err || -5) : cb(0, rawStat(st))));
      };
    }
    if (ops.statfs) {
      const f = ops.statfs.bind(ops);
      raw.statfs = (p, cb) => { const ctx = ctxOf(); run('statfs', p, () => f(p, ctx), cb); };
    }
    if (ops.access) {
      const f = ops.access.bind(ops);
      raw.access = (p, mode, cb) => { const ctx = ctxOf(); run('access', p, () => f(p, mode, ctx), (e) => cb(e)); };
    }
    if (ops.readdir) {
      const f = ops.readdir.bind(ops);
      raw.readdir = (p, fh, cb) => {
        const ctx = ctxOf();
        run('readdir', p, () => f(p, fh, ctx), (err, entries) => {
          if (err || !entries) { cb(err || -5); return; }
          const names: string[] = [];
          const stats: RawStat[] = [];
          for (const e of entries) {
            const name = typeof e === 'string' ? e : e.name;
            const bad = badName(name);
            if (bad) {
              // One unusable name must not hide the rest of the directory.
              fail('readdir', p, new Ocfs2Error(`readdir ${displayPath(p)}: entry dropped: ${bad}`));
              continue;
            }
            names.push(name);
            if (typeof e !== 'string' && e.stat) stats.push(rawStat(e.stat));
          }
          // fuse-native uses the stats only when there is one per name.
          cb(0, names, stats.length === names.length ? stats : []);
        });
      };
    }
    if (ops.opendir) {
      const f = ops.opendir.bind(ops);
      raw.opendir = (p, flags, cb) => { const ctx = ctxOf(); run('opendir', p, () => f(p, flags, ctx), (e, fh) => cb(e, fh ?? 0)); };
    }
    if (ops.releasedir) {
      const f = ops.releasedir.bind(ops);
      raw.releasedir = (p, fh, cb) => { const ctx = ctxOf(); run('releasedir', p, () => f(p, fh, ctx), (e) => cb(e)); };
    }
    if (ops.fsyncdir) {
      const f = ops.fsyncdir.bind(ops);
      raw.fsyncdir = (p, ds, fh, cb) => { const ctx = ctxOf(); run('fsyncdir', p, () => f(p, ds !== 0, fh, ctx), (e) => cb(e)); };
    }
    if (ops.open) {
      const f = ops.open.bind(ops);
      raw.open = (p, flags, cb) => { const ctx = ctxOf(); run('open', p, () => f(p, flags, ctx), (e, fh) => cb(e, fh ?? 0)); };
    }
    if (ops.create) {
      const f = ops.create.bind(ops);
      raw.create = (p, mode, flags, cb) => { const ctx = ctxOf(); run('create', p, () => f(p, mode, flags, ctx), (e, fh) => cb(e, fh ?? 0)); };
    }
    if (ops.read) {
      const f = ops.read.bind(ops);
      raw.read = (p, fh, buf, len, pos, cb) => { const ctx = ctxOf(); runCount('read', p, () => f(p, fh, buf, len, pos, ctx), cb); };
    }
    if (ops.write) {
      const f = ops.write.bind(ops);
      raw.write = (p, fh, buf, len, pos, cb) => { const ctx = ctxOf(); runCount('write', p, () => f(p, fh, buf, len, pos, ctx), cb); };
    }
    if (ops.flush) {
      const f = ops.flush.bind(ops);
      raw.flush = (p, fh, cb) => { const ctx = ctxOf(); run('flush', p, () => f(p, fh, ctx), (e) => cb(e)); };
    }
    if (ops.fsync) {
      const f = ops.fsync.bind(ops);
      raw.fsync = (p, ds, fh, cb) => { const ctx = ctxOf(); run('fsync', p, () => f(p, ds !== 0, fh, ctx), (e) => cb(e)); };
    }
    if (ops.release) {
      const f = ops.release.bind(ops);
      raw.release = (p, fh, cb) => { const ctx = ctxOf(); run('release', p, () => f(p, fh, ctx), (e) => cb(e)); };
    }
    if (ops.truncate) {
      const f = ops.truncate.bind(ops);
      raw.truncate = (p, size, cb) => { const ctx = ctxOf(); run('truncate', p, () => f(p, size, ctx), (e) => cb(e)); };
    }
    if (ops.ftruncate) {
      const f = ops.ftruncate.bind(ops);
      raw.ftruncate = (p, fh, size, cb) => { const ctx = ctxOf(); run('ftruncate', p, () => f(p, fh, size, ctx), (e) => cb(e)); };
    }
    if (ops.fallocate) {
      const f = ops.fallocate.bind(ops);
      raw.fallocate = (p, fh, mode, off, len, cb) => { const ctx = ctxOf(); run('fallocate', p, () => f(p, fh, mode, off, len, ctx), (e) => cb(e)); };
    }
    if (ops.utimens) {
      const f = ops.utimens.bind(ops);
      raw.utimens = (p, at, mt, cb) => { const ctx = ctxOf(); run('utimens', p, () => f(p, utimeArg(at), utimeArg(mt), ctx), (e) => cb(e)); };
    }
    if (ops.chown) {
      const f = ops.chown.bind(ops);
      raw.chown = (p, uid, gid, cb) => {
        const ctx = ctxOf();
        run('chown', p, () => f(p, uid === NO_ID ? null : uid, gid === NO_ID ? null : gid, ctx), (e) => cb(e));
      };
    }
    if (ops.chmod) {
      const f = ops.chmod.bind(ops);
      raw.chmod = (p, mode, cb) => { const ctx = ctxOf(); run('chmod', p, () => f(p, mode, ctx), (e) => cb(e)); };
    }
    if (ops.mknod) {
      const f = ops.mknod.bind(ops);
      raw.mknod = (p, mode, dev, cb) => { const ctx = ctxOf(); run('mknod', p, () => f(p, mode, dev, ctx), (e) => cb(e)); };
    }
    if (ops.readlink) {
      const f = ops.readlink.bind(ops);
      raw.readlink = (p, cb) => {
        const ctx = ctxOf();
        run('readlink', p, async () => {
          const target = await f(p, ctx);
          if (typeof target !== 'string' || !isBinaryString(target)) {
            throw new Ocfs2Error(`readlink ${displayPath(p)}: target is not a binary (${PATH_ENCODING}) string`);
          }
          return target;
        }, cb);
      };
    }
    if (ops.symlink) {
      const f = ops.symlink.bind(ops);
      raw.symlink = (target, p, cb) => { const ctx = ctxOf(); run('symlink', p, () => f(target, p, ctx), (e) => cb(e)); };
    }
    if (ops.link) {
      const f = ops.link.bind(ops);
      raw.link = (from, to, cb) => { const ctx = ctxOf(); run('link', to, () => f(from, to, ctx), (e) => cb(e)); };
    }
    if (ops.unlink) {
      const f = ops.unlink.bind(ops);
      raw.unlink = (p, cb) => { const ctx = ctxOf(); run('unlink', p, () => f(p, ctx), (e) => cb(e)); };
    }
    if (ops.mkdir) {
      const f = ops.mkdir.bind(ops);
      raw.mkdir = (p, mode, cb) => { const ctx = ctxOf(); run('mkdir', p, () => f(p, mode, ctx), (e) => cb(e)); };
    }
    if (ops.rmdir) {
      const f = ops.rmdir.bind(ops);
      raw.rmdir = (p, cb) => { const ctx = ctxOf(); run('rmdir', p, () => f(p, ctx), (e) => cb(e)); };
    }
    if (ops.rename) {
      const f = ops.rename.bind(ops);
      raw.rename = (from, to, cb) => { const ctx = ctxOf(); run('rename', from, () => f(from, to, ctx), (e) => cb(e)); };
    }
    if (ops.setxattr) {
      const f = ops.setxattr.bind(ops);
      // The value buffer points into libfuse memory valid only until the
      // reply: copy it so an async implementation may keep it.
      raw.setxattr = (p, name, value, _position, flags, cb) => {
        const ctx = ctxOf();
        const copy = Buffer.from(value);
        run('setxattr', p, () => f(p, name, copy, flags, ctx), (e) => cb(e));
      };
    }
    if (ops.getxattr) {
      const f = ops.getxattr.bind(ops);
      raw.getxattr = (p, name, _position, cb) => { const ctx = ctxOf(); run('getxattr', p, () => f(p, name, ctx), (e, v) => cb(e, v ?? null)); };
    }
    if (ops.listxattr) {
      const f = ops.listxattr.bind(ops);
      raw.listxattr = (p, cb) => {
        const ctx = ctxOf();
        run('listxattr', p, async () => {
          const list = await f(p, ctx);
          for (const n of list) {
            if (typeof n !== 'string' || n === '' || !isBinaryString(n) || n.includes('\0')) {
              throw new Ocfs2Error(`listxattr ${displayPath(p)}: bad attribute name ${JSON.stringify(n)}`);
            }
          }
          return list;
        }, cb);
      };
    }
    if (ops.removexattr) {
      const f = ops.removexattr.bind(ops);
      raw.removexattr = (p, name, cb) => { const ctx = ctxOf(); run('removexattr', p, () => f(p, name, ctx), (e) => cb(e)); };
    }
    return raw;
  }
}

/** FUSE_NAME_MAX: the kernel refuses longer directory entry names. */
const FUSE_NAME_MAX = 1024;

/** Why a readdir name cannot be handed to the kernel, or '' if it can. */
function badName(name: unknown): string {
  if (typeof name !== 'string') return `not a string (${typeof name})`;
  if (name === '') return 'empty name';
  if (!isBinaryString(name)) return `not a binary (${PATH_ENCODING}) string: ${JSON.stringify(name)}`;
  if (name.includes('/') || name.includes('\0')) return `name contains '/' or NUL: ${displayPath(name)}`;
  if (name.length > FUSE_NAME_MAX) return `name longer than ${FUSE_NAME_MAX} bytes`;
  return '';
}

function buildOptions(opts: MountOptions): string[] {
  const out: string[] = [];
  const user = opts.options ?? [];
  for (const o of user) {
    if (!o || /[,\s]/.test(o)) throw new Error(`FuseMount: invalid option ${JSON.stringify(o)} (one option per element)`);
  }
  if (opts.readOnly) out.push('ro');
  if (opts.bigWrites ?? true) {
    out.push('big_writes');
    if (!user.some((o) => o.startsWith('max_write='))) out.push(`max_write=${MAX_WRITE}`);
  }
  out.push(...user);
  return out;
}

/** Convenience: new FuseMount() + mount(). */
export async function mount(mountpoint: string, ops: Operations, opts: MountOptions = {}): Promise<FuseMount> {
  const m = new FuseMount();
  await m.mount(mountpoint, ops, opts);
  return m;
}

/** Lazily unmounts whatever FUSE filesystem is at mountpoint (fusermount -u -z). */
export function forceUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('timeout', ['10', 'fusermount', '-u', '-z', mountpoint], (err) => (err ? reject(err) : resolve()));
  });
}

/** True if mountpoint is currently a mount point of this mount namespace. */
export function isMountPoint(mountpoint: string): boolean {
  const want = path.resolve(mountpoint);
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').some((line) => unescape(line.split(' ')[4] ?? '') === want);
}
