/**
 * The mount command: `ocfs2-fuse [-o OPTS] DEVICE MOUNTPOINT`.
 *
 * Like other FUSE filesystems it returns once the mount is ready and keeps
 * serving in the background; `-f` keeps it in the foreground.  The daemon
 * unmounts cleanly on SIGINT/SIGTERM and exits when unmounted from outside
 * (`fusermount3 -u`).
 */
import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { Volume } from '../libocfs2/volume';
import { Ocfs2Error } from '../libocfs2/errors';
import { DEFAULT_CACHE_BYTES } from '../libocfs2/io';
import { FuseMount, FUSE_OWN_OPTIONS } from '../fuse/binding';
import { Ocfs2FuseOps } from '../fuse/ops';
import { Ocfs2RwFuseOps } from '../fuse/rwops';
import { Ocfs2Fs, openFsVolume } from '../libocfs2/fs';
import { recoverOrphans } from '../libocfs2/fs/orphans';
import { VolumeClaim } from '../libocfs2/claim';
import { addCommon, DEFAULT_CLUSTER_CONF, type CommonOpts } from './cluster-node';
import { startVolumeHeartbeat, type VolumeHeartbeat } from './mount-cluster';

export interface MountCliOptions extends Partial<CommonOpts> {
  options?: string[];
  foreground?: boolean;
  cacheMb?: string;
  debug?: boolean;
  dirtyJournal?: 'overlay' | 'refuse';
}

/** Split `-o a,b=c` lists (repeatable) into single options. */
export function splitOptions(list: string[] | undefined): string[] {
  return (list ?? []).flatMap((o) => o.split(',')).map((o) => o.trim()).filter((o) => o.length > 0);
}

/** Seconds the kernel may cache attributes and names (invalidated explicitly when they change behind it). */
const CACHE_TIMEOUT_S = 60;

/** Options we interpret ourselves; everything else goes to libfuse. */
const OWN_OPTIONS = new Set(['ro', 'rw']);

/**
 * fstab(5) options that are for mount(8) and the boot scripts, not for the
 * filesystem: mount(8) normally strips them before running the helper, but a
 * line handed over by hand (or by another mount front end) must not reach
 * libfuse, which rejects options it does not know.
 */
const FSTAB_ONLY = new Set(['defaults', 'auto', 'noauto', '_netdev', 'nofail', 'user', 'nouser', 'users', 'owner', 'group']);
const isFstabOnly = (o: string): boolean => FSTAB_ONLY.has(o) || o.startsWith('x-') || o.startsWith('comment=');

/**
 * Mount options the front end accepts: those libfuse 3's fuse_session_new
 * takes (lib/mount.c fuse_mount_opts, lib/fuse_lowlevel.c fuse_ll_opts) and
 * those src/fuse/binding.ts interprets itself (FUSE_OWN_OPTIONS).  Anything
 * else is refused by name before the volume is opened: libfuse only says
 * "fuse_session_new failed".
 */
const FUSE_OPTIONS = new Set([
  'allow_other', 'allow_root', 'auto_unmount', 'default_permissions', 'fsname', 'subtype', 'max_read',
  'blkdev', 'blksize', 'debug', 'dev', 'nodev', 'suid', 'nosuid', 'exec', 'noexec', 'atime', 'noatime',
  'relatime', 'norelatime', 'strictatime', 'sync', 'async', 'dirsync', 'context', 'fscontext', 'defcontext',
  'rootcontext', ...FUSE_OWN_OPTIONS,
]);

/** The first option neither we nor libfuse know, if any. */
export function unknownMountOption(opts: string[]): string | undefined {
  return opts.find((o) => { const k = o.split('=')[0]!; return !OWN_OPTIONS.has(k) && !FUSE_OPTIONS.has(k) && !isFstabOnly(o); });
}

export function registerMountCommand(program: Command): void {
  program
    .argument('[device]', 'OCFS2 block device or image file')
    .argument('[mountpoint]', 'directory to mount on')
    .option('-o, --options <opts>', 'mount options, comma separated, repeatable (ro, rw, and libfuse options such as allow_other)',
      (v: string, prev: string[] = []) => [...prev, v])
    .option('-f, --foreground', 'stay in the foreground (default: return once mounted)')
    .option('--cache-mb <n>', `metadata block cache size in MiB (default ${DEFAULT_CACHE_BYTES >> 20})`)
    .option('--dirty-journal <mode>', 'read-only mount of a volume whose journal needs recovery: overlay (replay in memory) or refuse', 'overlay')
    .option('-d, --debug', 'log every FUSE request (implies -f)');
  // A cluster volume's read-write mount joins the cluster: the cluster commands' options and defaults.
  addCommon(program);
  program.action(async (device: string | undefined, mountpoint: string | undefined, o: MountCliOptions) => {
    // A word that is no file ("chek") is a mistyped subcommand, not a device (commander's message and suggestion).
    if (device && /^[a-z][a-z0-9-]*$/.test(device) && !fs.existsSync(device)) {
      (program as unknown as { unknownCommand(): never }).unknownCommand();
    }
    if (!device || !mountpoint) {
      program.help({ error: true });
      return;
    }
    await runMount(device, mountpoint, o);
  });
}

export async function runMount(device: string, mountpoint: string, o: MountCliOptions): Promise<void> {
  const opts = splitOptions(o.options);
  // Read-write unless told otherwise; the last of ro/rw wins, as with mount(8).
  const readOnly = opts.filter((x) => x === 'ro' || x === 'rw').pop() === 'ro';
  let st: fs.Stats;
  try { st = fs.statSync(mountpoint); } catch { throw new Ocfs2Error(`mount point ${mountpoint} does not exist`); }
  if (!st.isDirectory()) throw new Ocfs2Error(`mount point ${mountpoint} is not a directory`);
  const bad = unknownMountOption(opts);
  if (bad !== undefined) throw new Ocfs2Error(`unknown mount option "${bad}"`);

  if (!o.foreground && !o.debug && !process.env.OCFS2_FUSE_DAEMON) {
    await daemonize();
    return;
  }

  const readyFd = process.env.OCFS2_FUSE_READY_FD ? Number(process.env.OCFS2_FUSE_READY_FD) : undefined;
  // A daemon child reports startup messages to its parent over readyFd (its stderr is a log or nothing).
  const notify = (line: string) => {
    process.stderr.write(`${line}\n`);
    if (readyFd !== undefined) { try { fs.writeSync(readyFd, `${line}\n`); } catch { /* parent gone */ } }
  };
  try {
    await serve(device, mountpoint, o, readOnly, opts, notify, readyFd);
  } catch (e) {
    if (readyFd !== undefined) notify(`ocfs2-fuse: ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }
}

/**
 * Serve one mount until it is unmounted.  Read-only: the volume opened
 * read-only (a dirty journal replayed in memory) under Ocfs2FuseOps.
 * Read-write: the journaled read-write mount (openFsVolume -> rwmount),
 * orphans left by a crash deleted first (ocfs2_recover_orphans: our slot and
 * every slot recovered at mount), then Ocfs2Fs under Ocfs2RwFuseOps.
 *
 * Every step that takes something pushes its undo: the claim on the volume
 * (claim.ts), the heartbeat of a cluster volume, the open volume (clean
 * unmount: journal checkpointed and clean, slot released).  A failure at any
 * step, SIGINT/SIGTERM, and an unmount from outside all end in the same
 * undo, in reverse order.
 */
async function serve(
  device: string, mountpoint: string, o: MountCliOptions, readOnly: boolean, opts: string[],
  notify: (line: string) => void, readyFd: number | undefined,
): Promise<void> {
  const warn = (m: string) => notify(`ocfs2-fuse: warning: ${m}`);
  const cacheBytes = o.cacheMb ? Math.max(1, Number(o.cacheMb)) * 1024 * 1024 : undefined;
  const undo: (() => Promise<void> | void)[] = [];
  const fuse = new FuseMount();
  const signals = new TerminationSignals(() => fuse, mountpoint, notify);
  try {
    const claim = VolumeClaim.acquire(device, { mode: readOnly ? 'read' : 'write', tool: 'mount', mountpoint });
    undo.push(() => claim.release());
    let ops: Ocfs2FuseOps;
    let vol: Volume;
    if (readOnly) {
      vol = await Volume.open(device, { readOnly, cacheBytes, dirtyJournal: o.dirtyJournal ?? 'overlay', warn });
      const v = vol;
      undo.push(() => v.close());
      if (!vol.localMount) {
        warn(`${device} is a cluster-mode volume (cluster "${vol.sb.clusterName}"): mounted read-only without cluster locks; `
          + 'what you read may be stale if other nodes are writing');
      }
      const bitmapProblem = await vol.checkGlobalBitmap();
      if (bitmapProblem) warn(`global bitmap: ${bitmapProblem.message}; statfs will fail with EIO (run fsck.ocfs2)`);
      ops = new Ocfs2FuseOps(vol, { readOnly, bitmapProblem });
    } else {
      const peek = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
      const cluster = peek.localMount ? undefined : peek.sb.clusterName;
      await peek.close();
      let hb: VolumeHeartbeat | undefined;
      if (cluster !== undefined) {
        hb = await startVolumeHeartbeat(device, cluster, { ...o, clusterConf: o.clusterConf ?? DEFAULT_CLUSTER_CONF });
        const h = hb;
        undo.push(() => h.leave());
      }
      signals.check();
      // openReadWrite refuses while another node heartbeats (ours excluded), so no live node's journal is replayed.
      const rv = await openFsVolume(device, { cacheBytes, warn, node: hb?.nodeNum, stopgap: process.env.OCFS2_FUSE_STOPGAP === '1' });
      vol = rv.vol;
      const fsops = new Ocfs2Fs(rv);
      undo.push(async () => { await fsops.flush(); await rv.close(); });
      signals.check();
      for (const r of await recoverOrphans(fsops, [rv.slot, ...(rv.rw?.orphanSlots ?? [])])) {
        if (r.found) notify(`ocfs2-fuse: orphan_dir:${String(r.slot).padStart(4, '0')}: deleted ${r.deleted} of ${r.found} orphaned inodes`);
      }
      ops = new Ocfs2RwFuseOps(fsops);
    }
    signals.check();
    const libfuseOpts = opts.filter((x) => !OWN_OPTIONS.has(x.split('=')[0]!) && !isFstabOnly(x));
    const base = ['default_permissions', `fsname=${device}`, 'subtype=ocfs2'];
    if (process.getuid?.() === 0) base.push('allow_other');
    const options = [...base, ...libfuseOpts.filter((x) => !base.includes(x))];
    const log = (m: string) => ops.log(m);
    try {
      await fuse.mount(mountpoint, ops, {
        readOnly,
        debug: o.debug ?? false,
        handleSignals: false,
        // One node changes this volume, through this mount: the kernel's caches stay valid (page cache
        // kept across opens), and what changes behind its back is invalidated through FuseMount.
        attrTimeout: CACHE_TIMEOUT_S,
        entryTimeout: CACHE_TIMEOUT_S,
        negativeTimeout: CACHE_TIMEOUT_S,
        options,
        onOpError: (op, ino, err) => {
          // Corruption is reported once per block/check; ordinary errno results (ENOENT...) are not logged.
          if (err instanceof Ocfs2Error && err.name !== 'PosixError') log(`${op} inode ${ino}: ${err.message}`);
          else if (!(err instanceof Ocfs2Error)) log(`${op} inode ${ino}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        },
      });
    } catch (e) {
      throw new Ocfs2Error(`${e instanceof Error ? e.message : String(e)} (mount options: ${options.join(',')})`);
    }
    notify(`ocfs2-fuse: mounted ${device} on ${mountpoint} (${readOnly ? 'read-only' : 'read-write'}, ${vol.blockSize}-byte blocks, ${vol.clusterSize}-byte clusters)`);
    if (readyFd !== undefined) {
      notify('ready');
      try { fs.closeSync(readyFd); } catch { /* already closed */ }
    }
    signals.mounted();
    await fuse.waitUnmounted();
  } finally {
    signals.dispose();
    let first: unknown;
    for (const u of undo.reverse()) {
      try { await u(); } catch (e) { first ??= e; }
    }
    if (first !== undefined) throw first;
  }
}

/**
 * SIGINT/SIGTERM: unmount as `fusermount -u` would (not lazily), so that the
 * session ends, serve() undoes everything and the volume is left clean.  A
 * busy mount point refuses: we say so and keep serving.  A signal during
 * startup stops the startup at its next step (serve's undo then runs).
 */
class TerminationSignals {
  private pending: NodeJS.Signals | undefined;
  private isMounted = false;
  private readonly handler = (sig: NodeJS.Signals): void => this.onSignal(sig);

  constructor(private readonly fuse: () => FuseMount, private readonly mountpoint: string, private readonly notify: (l: string) => void) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** Between startup steps: stop if a signal came. */
  check(): void {
    if (this.pending) throw new Ocfs2Error(`${this.pending} during mount: stopped`);
  }

  mounted(): void {
    this.isMounted = true;
    if (this.pending) this.unmount(this.pending);
  }

  private onSignal(sig: NodeJS.Signals): void {
    this.pending = sig;
    if (this.isMounted) this.unmount(sig);
  }

  private unmount(sig: NodeJS.Signals): void {
    const mp = path.resolve(this.mountpoint);
    // Ask the kernel, as an outside unmount does: its DESTROY ends the session (FuseMount 'unmounted').
    const tryCmd = (cmds: string[][]): void => {
      const [cmd, ...rest] = cmds;
      if (!cmd) return;
      execFile('timeout', ['30', ...cmd, mp], (err, _out, stderr) => {
        if (!err) return;
        if ((err as { code?: unknown }).code === 127 || /not found|ENOENT/.test(String(stderr))) { tryCmd(rest); return; }
        if (/busy/i.test(String(stderr))) {
          this.notify(`ocfs2-fuse: ${sig}: ${mp} is busy (files open or a process inside); still mounted: close them and unmount`);
        } else if (rest.length) {
          tryCmd(rest);
        } else {
          this.notify(`ocfs2-fuse: ${sig}: unmounting ${mp} failed: ${String(stderr).trim() || err.message}`);
        }
      });
    };
    tryCmd([['fusermount3', '-u'], ['umount']]);
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

/**
 * Re-run ourselves detached with the same arguments in the foreground and
 * wait until the child says the mount is ready (or fails).  The child's
 * startup messages come back over fd 3; afterwards it logs to the file named
 * by OCFS2_FUSE_LOG, or nowhere.
 */
async function daemonize(): Promise<void> {
  const logFile = process.env.OCFS2_FUSE_LOG;
  const logFd = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1), '--foreground'], {
    detached: true,
    stdio: ['ignore', 'ignore', logFd, 'pipe'],
    env: { ...process.env, OCFS2_FUSE_DAEMON: '1', OCFS2_FUSE_READY_FD: '3' },
  });
  if (typeof logFd === 'number') fs.closeSync(logFd);
  const channel = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  let text = '';
  const ready = await new Promise<boolean>((resolve) => {
    channel.on('data', (d: Buffer) => {
      text += d.toString();
      if (/^ready$/m.test(text)) resolve(true);
    });
    channel.on('end', () => resolve(/^ready$/m.test(text)));
    child.on('exit', () => resolve(/^ready$/m.test(text)));
  });
  process.stderr.write(text.replace(/^ready\n?/m, ''));
  channel.destroy();
  // The child has already said why (copied to our stderr above).
  if (!ready) throw Object.assign(new Ocfs2Error('mount failed'), { exitCode: 1, reported: true });
  child.unref();
}
