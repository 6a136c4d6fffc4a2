/**
 * The FUSE front end: a typed, promise-based wrapper around our addon over
 * libfuse 3's low-level API (src/native/fuse3ll.c).  This is the only module
 * that talks to the addon; the rest of the project implements `Operations`.
 *
 * - Inode based: node ids are what the filesystem says (the caller maps its
 *   root to FUSE_ROOT_ID); names, link targets and xattr names are Buffers of
 *   their raw bytes.
 * - The libfuse thread never waits for JavaScript: each request arrives here,
 *   the operation runs (concurrently with others), and exactly one reply goes
 *   back through the addon.  Errors thrown by operations go through errnoOf
 *   (src/libocfs2/errors.ts).
 * - Kernel cache invalidation (`invalidateInode`, `invalidateEntry`,
 *   `notifyDelete`) may be called at any time: it runs off the JavaScript
 *   thread, one notification after another, each after every reply already
 *   sent (fuse_lowlevel.h: notify_inval_entry must not run inside a related
 *   request; the addon never does, and replies keep flowing while it waits).
 * - Times are nanoseconds (bigint) or { sec, nsec }.
 * - SIGINT/SIGTERM unmount every mount and exit; an external
 *   `fusermount3 -u` ends the session loop and is reported.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { errnoOf } from '../libocfs2/errors';
import { loadAddon } from '../native/addon';

/** FUSE_ROOT_ID: the kernel's node id for the mount's root. */
export const FUSE_ROOT_ID = 1;

/** tv_nsec values of utimensat(2). */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;
export const NS_PER_SEC = 1_000_000_000n;

/** A time as seconds + nanoseconds (sec may be negative, 0 <= nsec < 1e9). */
export interface Timespec { sec: number; nsec: number }
/** A timestamp: nanoseconds since the epoch, or a Timespec. */
export type FsTime = bigint | Timespec;
/** What setattr receives for each of atime and mtime. */
export type UtimeArg = Timespec | 'now';

export interface Stat {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev?: number;
  blksize?: number;
  /** 512-byte units. */
  blocks?: number;
  atimeNs: FsTime;
  mtimeNs: FsTime;
  ctimeNs: FsTime;
}

export interface StatFs {
  bsize: number; frsize: number; blocks: number; bfree: number; bavail: number;
  files: number; ffree: number; favail: number; fsid?: number; flag?: number; namemax: number;
}

/** A lookup result: the kernel takes one reference (lookup count) on `ino`. */
export interface Entry {
  ino: number;
  generation: number;
  attr: Stat;
  /** Seconds; default from MountOptions. */
  attrTimeout?: number;
  entryTimeout?: number;
}

/** What open/opendir/create answer besides the entry. */
export interface Opened {
  fh: number;
  /** Keep the page cache across opens (FOPEN_KEEP_CACHE). */
  keepCache?: boolean;
  /** Bypass the page cache (FOPEN_DIRECT_IO). */
  directIo?: boolean;
  /** Directory contents may be cached by the kernel (FOPEN_CACHE_DIR). */
  cacheReaddir?: boolean;
  /** No FLUSH at close (FOPEN_NOFLUSH): for a filesystem whose flush has nothing to do. */
  noFlush?: boolean;
}

/** One directory entry; `next` is the offset cookie of the entry after it. */
export interface DirEntry {
  name: Buffer;
  ino: number;
  mode: number;
  next: number;
  /** readdirplus only: the entry for the name (not for "." and ".."). */
  entry?: Entry;
}

/** setattr changes: only the fields present change. */
export interface SetattrIn {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: UtimeArg;
  mtime?: UtimeArg;
  /** The open file it came through (ftruncate, fchmod...), if any. */
  fh?: number;
}

/** A POSIX byte-range lock (struct flock). */
export interface PosixLock { type: number; whence: number; start: number; len: number; pid: number }

/** Who made the request (fuse_req_ctx). */
export interface RequestContext { uid: number; gid: number; pid: number }

export interface ConnInfo { protoMajor: number; protoMinor: number; capable: number; want: number; maxWrite: number }

type R<T> = Promise<T> | T;

/**
 * Filesystem operations, by node id.  Throw an Ocfs2Error/PosixError (or
 * anything with a Node `code`) to fail with that errno.  Every operation
 * whose reply is an Entry (lookup, mknod, mkdir, symlink, link, create, and
 * readdirplus entries reported to `readdirplusAccepted`) hands the kernel one
 * reference, which `forget` gives back.
 */
export interface Operations {
  init?(conn: ConnInfo): void;
  /** Called once when the session has ended, after the last reply. */
  destroy?(): R<void>;
  /** null: no such name (a negative entry, cached for negativeTimeout). */
  lookup(parent: number, name: Buffer, ctx: RequestContext): R<Entry | null>;
  forget?(ino: number, nlookup: number): void;
  getattr(ino: number, fh: number | undefined, ctx: RequestContext): R<Stat>;
  setattr?(ino: number, set: SetattrIn, ctx: RequestContext): R<Stat>;
  readlink?(ino: number, ctx: RequestContext): R<Buffer>;
  mknod?(parent: number, name: Buffer, mode: number, rdev: number, ctx: RequestContext): R<Entry>;
  mkdir?(parent: number, name: Buffer, mode: number, ctx: RequestContext): R<Entry>;
  unlink?(parent: number, name: Buffer, ctx: RequestContext): R<void>;
  rmdir?(parent: number, name: Buffer, ctx: RequestContext): R<void>;
  symlink?(target: Buffer, parent: number, name: Buffer, ctx: RequestContext): R<Entry>;
  /** flags: RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2. */
  rename?(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number, ctx: RequestContext): R<void>;
  link?(ino: number, newParent: number, newName: Buffer, ctx: RequestContext): R<Entry>;
  open?(ino: number, flags: number, ctx: RequestContext): R<Opened>;
  /** Up to size bytes at off (fewer = end of file). */
  read?(ino: number, fh: number, size: number, off: number, ctx: RequestContext): R<Buffer>;
  write?(ino: number, fh: number, data: Buffer, off: number, ctx: RequestContext): R<number>;
  flush?(ino: number, fh: number, lockOwner: number, ctx: RequestContext): R<void>;
  release?(ino: number, fh: number, flags: number, ctx: RequestContext): R<void>;
  fsync?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): R<void>;
  opendir?(ino: number, flags: number, ctx: RequestContext): R<Opened>;
  /**
   * Entries after offset cookie `off` (0 = from the start): about what fits in
   * `size` bytes (those that do not fit are asked for again from their offset).
   */
  readdir?(ino: number, fh: number, off: number, plus: boolean, size: number, ctx: RequestContext): R<DirEntry[]>;
  /** The readdirplus entries the kernel took (each one lookup reference). */
  readdirplusAccepted?(entries: DirEntry[]): void;
  releasedir?(ino: number, fh: number, ctx: RequestContext): R<void>;
  fsyncdir?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): R<void>;
  statfs?(ino: number, ctx: RequestContext): R<StatFs>;
  /** flags: XATTR_CREATE = 1, XATTR_REPLACE = 2. */
  setxattr?(ino: number, name: Buffer, value: Buffer, flags: number, ctx: RequestContext): R<void>;
  /** null = no such attribute (ENODATA). */
  getxattr?(ino: number, name: Buffer, ctx: RequestContext): R<Buffer | null>;
  listxattr?(ino: number, ctx: RequestContext): R<Buffer[]>;
  removexattr?(ino: number, name: Buffer, ctx: RequestContext): R<void>;
  access?(ino: number, mask: number, ctx: RequestContext): R<void>;
  create?(parent: number, name: Buffer, mode: number, flags: number, ctx: RequestContext): R<Entry & Opened>;
  /** mode is FALLOC_FL_* (KEEP_SIZE = 1, PUNCH_HOLE = 2, ...). */
  fallocate?(ino: number, fh: number, mode: number, off: number, len: number, ctx: RequestContext): R<void>;
  /** SEEK_DATA (3) / SEEK_HOLE (4); the new offset, or ENXIO past the end. */
  lseek?(ino: number, fh: number, off: number, whence: number, ctx: RequestContext): R<number>;
  copyFileRange?(inoIn: number, fhIn: number, offIn: number, inoOut: number, fhOut: number, offOut: number, len: number, flags: number, ctx: RequestContext): R<number>;
  /** flock(2) through FUSE_CAP_FLOCK_LOCKS: op is LOCK_SH/LOCK_EX/LOCK_UN, maybe | LOCK_NB. */
  flock?(ino: number, fh: number, owner: number, op: number, ctx: RequestContext): R<void>;
  /** F_GETLK: the first conflicting lock, or the lock with type F_UNLCK. */
  getlk?(ino: number, fh: number, owner: number, lock: PosixLock, ctx: RequestContext): R<PosixLock>;
  /** F_SETLK / F_SETLKW (sleep). */
  setlk?(ino: number, fh: number, owner: number, lock: PosixLock, sleep: boolean, ctx: RequestContext): R<void>;
}

export interface MountOptions {
  /** Mount read-only (`ro`). */
  readOnly?: boolean;
  /** libfuse/kernel mount options, one per element (allow_other, default_permissions, fsname=...). */
  options?: string[];
  /** libfuse debug output on stderr. */
  debug?: boolean;
  /** Seconds the kernel may keep attributes / names / negative lookups (default 1 / 1 / 0). */
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  /** Largest write request (default MAX_WRITE). */
  maxWrite?: number;
  /** Unmount and exit on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /** Called with any error an operation threw (e.g. for logging); the kernel gets -errnoOf(err). */
  onOpError?: (op: string, ino: number, err: unknown) => void;
}

/** 1 MiB: FUSE_MAX_MAX_PAGES (256) pages, what libfuse 3 and the kernel allow per request. */
export const MAX_WRITE = 1 << 20;

// FUSE_CAP_* (fuse_common.h)
const CAP_POSIX_LOCKS = 1 << 1;
const CAP_FLOCK_LOCKS = 1 << 10;
const CAP_AUTO_INVAL_DATA = 1 << 12;
const CAP_READDIRPLUS = 1 << 13;
const CAP_READDIRPLUS_AUTO = 1 << 14;
const CAP_WRITEBACK_CACHE = 1 << 16;
const CAP_PARALLEL_DIROPS = 1 << 18;
const CAP_CACHE_SYMLINKS = 1 << 23;
const CAP_EXPLICIT_INVAL_DATA = 1 << 25;

// setattr to_set bits (fuse_lowlevel.h FUSE_SET_ATTR_*)
const SET_MODE = 1 << 0;
const SET_UID = 1 << 1;
const SET_GID = 1 << 2;
const SET_SIZE = 1 << 3;
const SET_ATIME = 1 << 4;
const SET_MTIME = 1 << 5;
const SET_ATIME_NOW = 1 << 7;
const SET_MTIME_NOW = 1 << 8;

// Operation codes of src/native/fuse3ll.c.
const OP = {
  INIT: 1, END: 2, LOOKUP: 3, FORGET: 4, GETATTR: 5, SETATTR: 6, READLINK: 7, MKNOD: 8, MKDIR: 9, UNLINK: 10,
  RMDIR: 11, SYMLINK: 12, RENAME: 13, LINK: 14, OPEN: 15, READ: 16, WRITE: 17, FLUSH: 18, RELEASE: 19, FSYNC: 20,
  OPENDIR: 21, READDIR: 22, RELEASEDIR: 23, FSYNCDIR: 24, STATFS: 25, SETXATTR: 26, GETXATTR: 27, LISTXATTR: 28,
  REMOVEXATTR: 29, ACCESS: 30, CREATE: 31, GETLK: 32, SETLK: 33, FLOCK: 34, FALLOCATE: 35, READDIRPLUS: 36,
  LSEEK: 37, COPY_FILE_RANGE: 38,
} as const;
const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()]));

const OPEN_DIRECT_IO = 1;
const OPEN_KEEP_CACHE = 2;
const OPEN_CACHE_READDIR = 4;
const OPEN_NOFLUSH = 16;

const ATTR_N = 15;
const DIR_STRIDE = 6 + ATTR_N;
const NOTIFY_INODE = 0;
const NOTIFY_ENTRY = 1;
const NOTIFY_DELETE = 2;

const { ENOSYS, ENODATA, ERANGE, ENOTCONN } = osConstants.errno;

// ---- the addon, described once ----------------------------------------------

/** The addon's session handle (an external). */
interface Session { readonly fuse3llSession: never }
type Dispatch = (op: number, req: number, ino: number, a: number, b: number, c: number, d: number, e: number,
  buf1: Buffer | undefined, buf2: Buffer | Float64Array | undefined, uid: number, gid: number, pid: number) => void;
interface Addon {
  mount(mountpoint: string, args: string[], dispatch: Dispatch, maxWrite: number, wantSet: number, wantClear: number): Session;
  exit(s: Session): void;
  close(s: Session): void;
  ref(s: Session, on: boolean): void;
  replyErr(req: number, errno: number): number;
  replyNone(req: number): void;
  replyEntry(req: number, attr: Float64Array | undefined, ino: number, gen: number, attrTimeout: number, entryTimeout: number): number;
  replyCreate(req: number, attr: Float64Array, ino: number, gen: number, attrTimeout: number, entryTimeout: number, fh: number, flags: number): number;
  replyAttr(req: number, attr: Float64Array, timeout: number): number;
  replyReadlink(req: number, target: Buffer): number;
  replyOpen(req: number, fh: number, flags: number): number;
  replyWrite(req: number, count: number): number;
  replyBuf(req: number, buf: Buffer, len: number): number;
  replyStatfs(req: number, v: Float64Array): number;
  replyXattr(req: number, size: number): number;
  replyLock(req: number, type: number, whence: number, start: number, len: number, pid: number): number;
  replyLseek(req: number, off: number): number;
  replyDir(req: number, size: number, plus: boolean, names: Buffer[], nums: Float64Array): number;
  notify(s: Session, kind: number, ino: number, parent: number, off: number, len: number, name: Buffer | undefined): Promise<number>;
}

let addon: Addon | undefined;
function fuse3ll(): Addon {
  addon ??= loadAddon<Addon>('fuse3ll');
  return addon;
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

function putTime(a: Float64Array, i: number, t: FsTime): void {
  const ts = typeof t === 'bigint' ? toTimespec(t) : t;
  a[i] = ts.sec;
  a[i + 1] = ts.nsec;
}

function putAttr(a: Float64Array, at: number, s: Stat): void {
  a[at] = s.ino; a[at + 1] = s.mode; a[at + 2] = s.nlink; a[at + 3] = s.uid; a[at + 4] = s.gid;
  a[at + 5] = s.rdev ?? 0; a[at + 6] = s.size; a[at + 7] = s.blocks ?? 0; a[at + 8] = s.blksize ?? 4096;
  putTime(a, at + 9, s.atimeNs); putTime(a, at + 11, s.mtimeNs); putTime(a, at + 13, s.ctimeNs);
}

function attrArray(s: Stat): Float64Array {
  const a = new Float64Array(ATTR_N);
  putAttr(a, 0, s);
  return a;
}

function openFlags(o: Opened): number {
  return (o.directIo ? OPEN_DIRECT_IO : 0) | (o.keepCache ? OPEN_KEEP_CACHE : 0) | (o.cacheReaddir ? OPEN_CACHE_READDIR : 0) | (o.noFlush ? OPEN_NOFLUSH : 0);
}

// ---- the mount --------------------------------------------------------------

const activeMounts = new Set<FuseMount>();
let signalsInstalled = false;
let shuttingDown = false;

function onTerminationSignal(): void {
  if (shuttingDown) process.exit(1); // second signal: give up waiting
  shuttingDown = true;
  const mounts = [...activeMounts].filter((m) => m.handleSignals);
  Promise.allSettled(mounts.map((m) => m.unmount())).then((results) => {
    process.exit(results.some((r) => r.status === 'rejected') ? 1 : 0);
  }, () => process.exit(1));
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
 * Options this module interprets itself (libfuse 3's low-level session rejects them):
 * cache timeouts in seconds, max_write, and libfuse 2's use_ino, kernel_cache,
 * big_writes, auto_cache, readdir_ino, which are what this front end does anyway.
 */
export const FUSE_OWN_OPTIONS = ['attr_timeout', 'entry_timeout', 'negative_timeout', 'max_write', 'use_ino', 'kernel_cache', 'big_writes', 'auto_cache', 'readdir_ino'];
const OWN = new Set(FUSE_OWN_OPTIONS);

/**
 * One FUSE mount.  Events: 'unmounted' (UnmountedEvent) once the session has
 * ended and destroy has run.
 */
export class FuseMount extends EventEmitter {
  private state: 'idle' | 'mounting' | 'mounted' | 'unmounting' | 'unmounted' = 'idle';
  private session: Session | undefined;
  private ops!: Operations;
  private opts: MountOptions = {};
  mountpoint = '';
  handleSignals = true;
  private attrTimeout = 1;
  private entryTimeout = 1;
  private negativeTimeout = 0;
  private outstanding = 0;
  private drained: (() => void) | undefined;
  private unmountRequested = false;
  private ended: Promise<void> | undefined;
  private notifyChain: Promise<unknown> = Promise.resolve();
  private initDone: ((c: ConnInfo) => void) | undefined;
  /** What INIT negotiated. */
  conn: ConnInfo | undefined;
  /** The kernel's number for this connection (/sys/fs/fuse/connections/N). */
  private connection: number | undefined;

  get isMounted(): boolean { return this.state === 'mounted' || this.state === 'unmounting'; }

  /** Mounts ops at mountpoint; resolves once the kernel has completed INIT. */
  async mount(mountpoint: string, ops: Operations, opts: MountOptions = {}): Promise<void> {
    if (this.state !== 'idle') throw new Error(`FuseMount: already ${this.state}`);
    const user = opts.options ?? [];
    for (const o of user) {
      if (!o || /[,\s]/.test(o)) throw new Error(`FuseMount: invalid option ${JSON.stringify(o)} (one option per element)`);
    }
    let maxWrite = opts.maxWrite ?? MAX_WRITE;
    this.attrTimeout = opts.attrTimeout ?? 1;
    this.entryTimeout = opts.entryTimeout ?? 1;
    this.negativeTimeout = opts.negativeTimeout ?? 0;
    const passed: string[] = [];
    for (const o of user) {
      const [k, v] = o.split('=', 2) as [string, string | undefined];
      if (!OWN.has(k)) { passed.push(o); continue; }
      const n = Number(v);
      if (k === 'attr_timeout') this.attrTimeout = n;
      else if (k === 'entry_timeout') this.entryTimeout = n;
      else if (k === 'negative_timeout') this.negativeTimeout = n;
      else if (k === 'max_write') maxWrite = Math.min(MAX_WRITE, n);
      // use_ino, kernel_cache, big_writes...: libfuse 2 options; inode numbers, keep_cache and big writes are the default here.
    }
    if (opts.readOnly) passed.unshift('ro');
    const args = ['ocfs2-fuse'];
    if (passed.length) args.push('-o', passed.join(','));
    if (opts.debug) args.push('-d');
    const a = fuse3ll();
    this.ops = ops;
    this.opts = opts;
    this.mountpoint = path.resolve(mountpoint);
    this.handleSignals = opts.handleSignals ?? true;
    this.state = 'mounting';
    let wantSet = CAP_READDIRPLUS | CAP_READDIRPLUS_AUTO | CAP_PARALLEL_DIROPS | CAP_CACHE_SYMLINKS | CAP_EXPLICIT_INVAL_DATA;
    if (ops.flock) wantSet |= CAP_FLOCK_LOCKS;
    if (ops.setlk) wantSet |= CAP_POSIX_LOCKS;
    // Page-cache invalidation is ours (invalidateInode), not the kernel's guess from mtime/size;
    // no writeback cache: a write must reach the journal's ordering, not linger in the kernel.
    let wantClear = CAP_AUTO_INVAL_DATA | CAP_WRITEBACK_CACHE;
    if (!ops.flock) wantClear |= CAP_FLOCK_LOCKS;
    if (!ops.setlk) wantClear |= CAP_POSIX_LOCKS;
    const inited = new Promise<ConnInfo>((resolve) => { this.initDone = resolve; });
    try {
      this.session = a.mount(this.mountpoint, args, this.dispatch, maxWrite, wantSet, wantClear);
    } catch (err) {
      this.state = 'idle';
      throw err;
    }
    this.state = 'mounted';
    // The kernel's connection number is the minor of the mount's st_dev (fs/fuse/control.c), read from
    // mountinfo: a stat of the mount point would be a request to ourselves, which this thread must answer.
    this.connection = mountMinor(this.mountpoint);
    activeMounts.add(this);
    if (this.handleSignals) installSignalHandlers();
    // INIT comes with the first request; a mount that never gets one still counts as mounted.
    await Promise.race([inited, new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  /** Unmounts (lazily, like fusermount3 -u -z) and waits for the session to end. */
  unmount(): Promise<void> {
    if (this.state === 'unmounted' || this.state === 'idle') return Promise.resolve();
    this.state = 'unmounting';
    if (!this.unmountRequested) {
      this.unmountRequested = true;
      void forceUnmount(this.mountpoint).catch(() => {
        // Not mounted here any more (detached earlier, still held open elsewhere) or fusermount3
        // failed: end our connection, so that the session loop returns and nothing stays behind.
        if (this.session) fuse3ll().exit(this.session);
        this.abort();
      });
    }
    return this.waitUnmounted();
  }

  /** Resolves when the session has ended (by unmount() or from outside). */
  waitUnmounted(): Promise<void> {
    return this.state === 'unmounted' ? Promise.resolve() : new Promise((resolve) => this.once('unmounted', () => resolve()));
  }

  /**
   * Abort our kernel connection (/sys/fs/fuse/connections/N/abort): every
   * pending and future request fails, the session loop returns.  For a mount
   * that cannot be unmounted any other way (or a fenced node).
   */
  abort(): void {
    if (this.connection === undefined || !this.isMounted) return;
    try { fs.writeFileSync(`/sys/fs/fuse/connections/${this.connection}/abort`, '1'); } catch { /* already gone */ }
  }

  /** Stop the session loop (fuse_session_exit); it returns at the next request. */
  exit(): void {
    if (this.session && this.isMounted) fuse3ll().exit(this.session);
  }

  /**
   * Drop the kernel's cached pages [off, off+len) (len 0: to the end) and
   * attributes of `ino`; off < 0: attributes only.  Resolves with 0 or
   * -errno (-ENOENT: the kernel had nothing cached).
   */
  invalidateInode(ino: number, off = 0, len = 0): Promise<number> {
    return this.notify(NOTIFY_INODE, ino, 0, off, len, undefined);
  }

  /** Drop the kernel's dentry parent/name and the parent's attributes. */
  invalidateEntry(parent: number, name: Buffer): Promise<number> {
    return this.notify(NOTIFY_ENTRY, 0, parent, 0, 0, name);
  }

  /** As invalidateEntry, and tells inotify watchers that `ino` was deleted. */
  notifyDelete(parent: number, ino: number, name: Buffer): Promise<number> {
    return this.notify(NOTIFY_DELETE, ino, parent, 0, 0, name);
  }

  private notify(kind: number, ino: number, parent: number, off: number, len: number, name: Buffer | undefined): Promise<number> {
    const s = this.session;
    if (!s || this.state !== 'mounted') return Promise.resolve(-ENOTCONN);
    // One after another: each after the replies and notifications before it.
    const p = this.notifyChain.then(() => fuse3ll().notify(s, kind, ino, parent, off, len, name));
    this.notifyChain = p.catch(() => undefined);
    return p;
  }

  private fail(op: string, ino: number, err: unknown): number {
    if (this.opts.onOpError) {
      try { this.opts.onOpError(op, ino, err); } catch { /* logging must not break replies */ }
    }
    const e = errnoOf(err);
    return e > 0 ? e : 5;
  }

  private done(): void {
    if (--this.outstanding === 0 && this.drained) this.drained();
  }

  /** Runs fn; on success reply(v), on a throw replyErr(errno).  Exactly one reply. */
  private run<T>(op: number, req: number, ino: number, fn: () => R<T>, reply: (v: T) => void): void {
    const a = addon!;
    this.outstanding++;
    const onErr = (err: unknown): void => { a.replyErr(req, this.fail(OP_NAMES[op] ?? String(op), ino, err)); this.done(); };
    const onOk = (v: T): void => {
      try { reply(v); } catch (err) { onErr(err); return; }
      this.done();
    };
    let r: R<T>;
    try { r = fn(); } catch (err) { onErr(err); return; }
    if (r instanceof Promise) r.then(onOk, onErr); else onOk(r);
  }

  private entryReply(req: number, e: Entry | null): void {
    const a = addon!;
    if (!e) { a.replyEntry(req, undefined, 0, 0, 0, this.negativeTimeout); return; }
    a.replyEntry(req, attrArray(e.attr), e.ino, e.generation, e.attrTimeout ?? this.attrTimeout, e.entryTimeout ?? this.entryTimeout);
  }

  private readonly dispatch: Dispatch = (op, req, ino, a1, b, c, d, e, buf1, buf2, uid, gid, pid) => {
    const a = addon!;
    const ops = this.ops;
    const ctx: RequestContext = { uid, gid, pid };
    const nosys = (): void => { this.outstanding++; a.replyErr(req, ENOSYS); this.done(); };
    const ok = (): void => { a.replyErr(req, 0); };
    switch (op) {
      case OP.INIT: {
        this.conn = { protoMajor: a1, protoMinor: b, capable: c, want: d, maxWrite: e };
        ops.init?.(this.conn);
        this.initDone?.(this.conn);
        return;
      }
      case OP.END: { void this.onEnd(); return; }
      case OP.FORGET: { ops.forget?.(ino, a1); return; }
      case OP.LOOKUP:
        this.run(op, req, ino, () => ops.lookup(ino, buf1!, ctx), (en) => this.entryReply(req, en));
        return;
      case OP.GETATTR:
        this.run(op, req, ino, () => ops.getattr(ino, a1 < 0 ? undefined : a1, ctx), (st) => a.replyAttr(req, attrArray(st), this.attrTimeout));
        return;
      case OP.SETATTR: {
        if (!ops.setattr) return nosys();
        const n = buf2 as Float64Array;
        const set = n[0]!;
        const s: SetattrIn = {};
        if (set & SET_MODE) s.mode = n[1]!;
        if (set & SET_UID) s.uid = n[2]!;
        if (set & SET_GID) s.gid = n[3]!;
        if (set & SET_SIZE) s.size = n[4]!;
        if (set & SET_ATIME_NOW) s.atime = 'now'; else if (set & SET_ATIME) s.atime = { sec: n[5]!, nsec: n[6]! };
        if (set & SET_MTIME_NOW) s.mtime = 'now'; else if (set & SET_MTIME) s.mtime = { sec: n[7]!, nsec: n[8]! };
        if (n[9]! >= 0) s.fh = n[9]!;
        const f = ops.setattr.bind(ops);
        this.run(op, req, ino, () => f(ino, s, ctx), (st) => a.replyAttr(req, attrArray(st), this.attrTimeout));
        return;
      }
      case OP.READLINK: {
        if (!ops.readlink) return nosys();
        const f = ops.readlink.bind(ops);
        this.run(op, req, ino, () => f(ino, ctx), (t) => a.replyReadlink(req, t));
        return;
      }
      case OP.MKNOD: {
        if (!ops.mknod) return nosys();
        const f = ops.mknod.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, a1, b, ctx), (en) => this.entryReply(req, en));
        return;
      }
      case OP.MKDIR: {
        if (!ops.mkdir) return nosys();
        const f = ops.mkdir.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, a1, ctx), (en) => this.entryReply(req, en));
        return;
      }
      case OP.UNLINK: {
        if (!ops.unlink) return nosys();
        const f = ops.unlink.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, ctx), ok);
        return;
      }
      case OP.RMDIR: {
        if (!ops.rmdir) return nosys();
        const f = ops.rmdir.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, ctx), ok);
        return;
      }
      case OP.SYMLINK: {
        if (!ops.symlink) return nosys();
        const f = ops.symlink.bind(ops);
        this.run(op, req, ino, () => f(buf2 as Buffer, ino, buf1!, ctx), (en) => this.entryReply(req, en));
        return;
      }
      case OP.RENAME: {
        if (!ops.rename) return nosys();
        const f = ops.rename.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, a1, buf2 as Buffer, b, ctx), ok);
        return;
      }
      case OP.LINK: {
        if (!ops.link) return nosys();
        const f = ops.link.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, buf1!, ctx), (en) => this.entryReply(req, en));
        return;
      }
      case OP.OPEN: {
        if (!ops.open) { this.outstanding++; a.replyOpen(req, 0, 0); this.done(); return; }
        const f = ops.open.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, ctx), (o) => a.replyOpen(req, o.fh, openFlags(o)));
        return;
      }
      case OP.READ: {
        if (!ops.read) return nosys();
        const f = ops.read.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, b, c, ctx), (buf) => a.replyBuf(req, buf, Math.min(buf.length, b)));
        return;
      }
      case OP.WRITE: {
        if (!ops.write) return nosys();
        const f = ops.write.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, buf1!, c, ctx), (n) => a.replyWrite(req, n));
        return;
      }
      case OP.FLUSH: {
        const f = ops.flush?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, b, ctx), ok);
        return;
      }
      case OP.RELEASE: {
        const f = ops.release?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, b, ctx), ok);
        return;
      }
      case OP.FSYNC: {
        const f = ops.fsync?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, b !== 0, ctx), ok);
        return;
      }
      case OP.OPENDIR: {
        if (!ops.opendir) { this.outstanding++; a.replyOpen(req, 0, 0); this.done(); return; }
        const f = ops.opendir.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, ctx), (o) => a.replyOpen(req, o.fh, openFlags(o)));
        return;
      }
      case OP.READDIR:
      case OP.READDIRPLUS: {
        if (!ops.readdir) return nosys();
        const plus = op === OP.READDIRPLUS;
        const f = ops.readdir.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, c, plus, b, ctx), (list) => this.replyDir(req, b, plus, list));
        return;
      }
      case OP.RELEASEDIR: {
        const f = ops.releasedir?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, ctx), ok);
        return;
      }
      case OP.FSYNCDIR: {
        const f = ops.fsyncdir?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, b !== 0, ctx), ok);
        return;
      }
      case OP.STATFS: {
        if (!ops.statfs) return nosys();
        const f = ops.statfs.bind(ops);
        this.run(op, req, ino, () => f(ino, ctx), (s) => a.replyStatfs(req, Float64Array.of(
          s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.fsid ?? 0, s.flag ?? 0, s.namemax)));
        return;
      }
      case OP.SETXATTR: {
        if (!ops.setxattr) return nosys();
        const f = ops.setxattr.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, buf2 as Buffer, a1, ctx), ok);
        return;
      }
      case OP.GETXATTR: {
        if (!ops.getxattr) return nosys();
        const f = ops.getxattr.bind(ops);
        const size = a1;
        this.run(op, req, ino, () => f(ino, buf1!, ctx), (v) => {
          if (v === null) a.replyErr(req, ENODATA);
          else if (size === 0) a.replyXattr(req, v.length);
          else if (v.length > size) a.replyErr(req, ERANGE);
          else a.replyBuf(req, v, v.length);
        });
        return;
      }
      case OP.LISTXATTR: {
        if (!ops.listxattr) return nosys();
        const f = ops.listxattr.bind(ops);
        const size = a1;
        this.run(op, req, ino, () => f(ino, ctx), (names) => {
          const list = Buffer.concat(names.flatMap((n) => [n, Buffer.alloc(1)]));
          if (size === 0) a.replyXattr(req, list.length);
          else if (list.length > size) a.replyErr(req, ERANGE);
          else a.replyBuf(req, list, list.length);
        });
        return;
      }
      case OP.REMOVEXATTR: {
        if (!ops.removexattr) return nosys();
        const f = ops.removexattr.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, ctx), ok);
        return;
      }
      case OP.ACCESS: {
        const f = ops.access?.bind(ops);
        this.run(op, req, ino, () => f?.(ino, a1, ctx), ok);
        return;
      }
      case OP.CREATE: {
        if (!ops.create) return nosys();
        const f = ops.create.bind(ops);
        this.run(op, req, ino, () => f(ino, buf1!, a1, b, ctx), (en) => a.replyCreate(req, attrArray(en.attr), en.ino, en.generation,
          en.attrTimeout ?? this.attrTimeout, en.entryTimeout ?? this.entryTimeout, en.fh, openFlags(en)));
        return;
      }
      case OP.GETLK:
      case OP.SETLK: {
        const n = buf2 as Float64Array;
        const lock: PosixLock = { type: n[2]!, whence: n[3]!, start: n[4]!, len: n[5]!, pid: n[6]! };
        if (op === OP.GETLK) {
          if (!ops.getlk) return nosys();
          const f = ops.getlk.bind(ops);
          this.run(op, req, ino, () => f(ino, n[0]!, n[1]!, lock, ctx), (l) => a.replyLock(req, l.type, l.whence, l.start, l.len, l.pid));
        } else {
          if (!ops.setlk) return nosys();
          const f = ops.setlk.bind(ops);
          this.run(op, req, ino, () => f(ino, n[0]!, n[1]!, lock, n[7] !== 0, ctx), ok);
        }
        return;
      }
      case OP.FLOCK: {
        if (!ops.flock) return nosys();
        const f = ops.flock.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, b, c, ctx), ok);
        return;
      }
      case OP.FALLOCATE: {
        if (!ops.fallocate) return nosys();
        const f = ops.fallocate.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, b, c, d, ctx), ok);
        return;
      }
      case OP.LSEEK: {
        if (!ops.lseek) return nosys();
        const f = ops.lseek.bind(ops);
        this.run(op, req, ino, () => f(ino, a1, b, c, ctx), (off) => a.replyLseek(req, off));
        return;
      }
      case OP.COPY_FILE_RANGE: {
        if (!ops.copyFileRange) return nosys();
        const f = ops.copyFileRange.bind(ops);
        const n = buf2 as Float64Array;
        this.run(op, req, ino, () => f(ino, n[0]!, n[1]!, n[2]!, n[3]!, n[4]!, n[5]!, n[6]!, ctx), (cnt) => a.replyWrite(req, cnt));
        return;
      }
      default:
        if (req) nosys();
    }
  };

  private replyDir(req: number, size: number, plus: boolean, list: DirEntry[]): void {
    const names: Buffer[] = [];
    const nums = new Float64Array(list.length * DIR_STRIDE);
    list.forEach((en, i) => {
      names.push(en.name);
      const at = i * DIR_STRIDE;
      nums[at] = en.ino; nums[at + 1] = en.mode; nums[at + 2] = en.next;
      if (plus && en.entry) {
        nums[at + 3] = en.entry.generation;
        nums[at + 4] = en.entry.attrTimeout ?? this.attrTimeout;
        nums[at + 5] = en.entry.entryTimeout ?? this.entryTimeout;
        putAttr(nums, at + 6, en.entry.attr);
      } else if (plus) {
        // "." and "..": no entry (generation -1: node id 0), the kernel takes no reference.
        nums[at + 3] = -1;
        nums[at + 6] = en.ino; nums[at + 7] = en.mode;
      }
    });
    const packed = addon!.replyDir(req, size, plus, names, nums);
    if (plus && this.ops.readdirplusAccepted && packed > 0) {
      this.ops.readdirplusAccepted(list.slice(0, packed).filter((x) => x.entry));
    }
  }

  /** The session loop has returned: wait for the last replies, destroy, free the session. */
  private onEnd(): Promise<void> {
    this.ended ??= (async () => {
      const external = !this.unmountRequested;
      this.state = 'unmounting';
      if (this.outstanding > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((r) => { this.drained = r; }),
          new Promise<void>((r) => { timer = setTimeout(r, 10_000); }),
        ]);
        clearTimeout(timer);
      }
      try { await this.ops.destroy?.(); } catch (err) { this.fail('destroy', FUSE_ROOT_ID, err); }
      const s = this.session;
      if (s && this.outstanding === 0) fuse3ll().close(s);
      // A request still unanswered keeps the session's memory (a reply needs it), not the process.
      else if (s) fuse3ll().ref(s, false);
      this.state = 'unmounted';
      activeMounts.delete(this);
      uninstallSignalHandlersIfIdle();
      this.emit('unmounted', { external } satisfies UnmountedEvent);
    })();
    return this.ended;
  }
}

/** Convenience: new FuseMount() + mount(). */
export async function mount(mountpoint: string, ops: Operations, opts: MountOptions = {}): Promise<FuseMount> {
  const m = new FuseMount();
  await m.mount(mountpoint, ops, opts);
  return m;
}

/** Lazily unmounts whatever FUSE filesystem is at mountpoint (fusermount3 -u -z). */
export function forceUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('timeout', ['10', 'fusermount3', '-u', '-z', mountpoint], (err) => (err ? reject(err) : resolve()));
  });
}

/** The mountinfo line of mountpoint's topmost mount in this namespace, split in fields, if mounted. */
function mountInfo(mountpoint: string): string[] | undefined {
  const want = path.resolve(mountpoint);
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').map((line) => line.split(' ')).filter((f) => unescape(f[4] ?? '') === want).at(-1);
}

/** True if mountpoint is currently a mount point of this mount namespace. */
export function isMountPoint(mountpoint: string): boolean {
  return mountInfo(mountpoint) !== undefined;
}

/** The minor device number of the mount at mountpoint (mountinfo field 3, major:minor). */
function mountMinor(mountpoint: string): number | undefined {
  const minor = Number(mountInfo(mountpoint)?.[2]?.split(':')[1]);
  return Number.isInteger(minor) ? minor : undefined;
}
