/**
 * The mount command: `ocfs2-fuse [-o OPTS] DEVICE MOUNTPOINT`.
 *
 * Like other FUSE filesystems it returns once the mount is ready and keeps
 * serving in the background; `-f` keeps it in the foreground.  The daemon
 * unmounts cleanly on SIGINT/SIGTERM and exits when unmounted from outside
 * (`fusermount3 -u`).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { Volume } from '../libocfs2/volume';
import { Ocfs2Error } from '../libocfs2/errors';
import { DEFAULT_CACHE_BYTES } from '../libocfs2/io';
import { FuseMount } from '../fuse/binding';
import { Ocfs2FuseOps } from '../fuse/ops';
import { Ocfs2RwFuseOps } from '../fuse/rwops';
import { Ocfs2Fs, openFsVolume } from '../libocfs2/fs';
import { recoverOrphans } from '../libocfs2/fs/orphans';

export interface MountCliOptions {
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

export function registerMountCommand(program: Command): void {
  program
    .argument('[device]', 'OCFS2 block device or image file')
    .argument('[mountpoint]', 'directory to mount on')
    .option('-o, --options <opts>', 'mount options, comma separated, repeatable (ro, rw, and libfuse options such as allow_other)',
      (v: string, prev: string[] = []) => [...prev, v])
    .option('-f, --foreground', 'stay in the foreground (default: return once mounted)')
    .option('--cache-mb <n>', `metadata block cache size in MiB (default ${DEFAULT_CACHE_BYTES >> 20})`)
    .option('--dirty-journal <mode>', 'read-only mount of a volume whose journal needs recovery: overlay (replay in memory) or refuse', 'overlay')
    .option('-d, --debug', 'log every FUSE request (implies -f)')
    .action(async (device: string | undefined, mountpoint: string | undefined, o: MountCliOptions) => {
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
 */
async function serve(
  device: string, mountpoint: string, o: MountCliOptions, readOnly: boolean, opts: string[],
  notify: (line: string) => void, readyFd: number | undefined,
): Promise<void> {
  const warn = (m: string) => notify(`ocfs2-fuse: warning: ${m}`);
  const cacheBytes = o.cacheMb ? Math.max(1, Number(o.cacheMb)) * 1024 * 1024 : undefined;
  let ops: Ocfs2FuseOps;
  let vol: Volume;
  let close: () => Promise<void>;
  if (readOnly) {
    vol = await Volume.open(device, { readOnly, cacheBytes, dirtyJournal: o.dirtyJournal ?? 'overlay', warn });
    if (!vol.localMount) {
      warn(`${device} is a cluster-mode volume (cluster "${vol.sb.clusterName}"): mounted read-only without cluster locks; `
        + 'what you read may be stale if other nodes are writing');
    }
    const bitmapProblem = await vol.checkGlobalBitmap();
    if (bitmapProblem) warn(`global bitmap: ${bitmapProblem.message}; statfs will fail with EIO (run fsck.ocfs2)`);
    ops = new Ocfs2FuseOps(vol, { readOnly, bitmapProblem });
    const v = vol;
    close = () => v.close();
  } else {
    // openReadWrite refuses a cluster-mode volume that another live node is heartbeating on.
    const rv = await openFsVolume(device, { cacheBytes, warn, stopgap: process.env.OCFS2_FUSE_STOPGAP === '1' });
    vol = rv.vol;
    const fsops = new Ocfs2Fs(rv);
    for (const r of await recoverOrphans(fsops, [rv.slot, ...(rv.rw?.orphanSlots ?? [])])) {
      if (r.found) notify(`ocfs2-fuse: orphan_dir:${String(r.slot).padStart(4, '0')}: deleted ${r.deleted} of ${r.found} orphaned inodes`);
    }
    ops = new Ocfs2RwFuseOps(fsops);
    close = async () => { await fsops.flush(); await rv.close(); };
  }
  const fuse = new FuseMount();
  const libfuseOpts = opts.filter((x) => !OWN_OPTIONS.has(x.split('=')[0]!));
  const base = ['default_permissions', `fsname=${device}`, 'subtype=ocfs2'];
  if (process.getuid?.() === 0) base.push('allow_other');
  const log = (m: string) => ops.log(m);
  await fuse.mount(mountpoint, ops, {
    readOnly,
    debug: o.debug ?? false,
    // One node changes this volume, through this mount: the kernel's caches stay valid, and what
    // changes behind its back is invalidated through FuseMount (attr_timeout=... still overrides).
    attrTimeout: CACHE_TIMEOUT_S,
    entryTimeout: CACHE_TIMEOUT_S,
    negativeTimeout: CACHE_TIMEOUT_S,
    options: [...base, ...libfuseOpts.filter((x) => !base.includes(x))],
    onOpError: (op, ino, err) => {
      // Corruption is reported once per block/check; ordinary errno results (ENOENT...) are not logged.
      if (err instanceof Ocfs2Error && err.name !== 'PosixError') log(`${op} inode ${ino}: ${err.message}`);
      else if (!(err instanceof Ocfs2Error)) log(`${op} inode ${ino}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    },
  });
  notify(`ocfs2-fuse: mounted ${device} on ${mountpoint} (${readOnly ? 'read-only' : 'read-write'}, ${vol.blockSize}-byte blocks, ${vol.clusterSize}-byte clusters)`);
  if (readyFd !== undefined) {
    notify('ready');
    try { fs.closeSync(readyFd); } catch { /* already closed */ }
  }
  await fuse.waitUnmounted();
  await close();
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
