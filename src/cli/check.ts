/**
 * `ocfs2-fuse check [options] DEVICE`: the fsck-style checker, with
 * fsck.ocfs2's options:
 *   -n  check only (default)      -y  repair (replays dirty journals first)
 *   -p  preen (-a): repair what is safe without questions; a clean volume is
 *       not checked unless -f ("DEVICE is clean.  It will be checked ...")
 *   -f  force a check (-n and -y always check fully)
 *   -F  skip the cluster check (live heartbeat)
 *   -b BLOCK / -B SIZE  read the superblock from a backup location
 *   -r N  restore backup superblock N (1..6) over the primary, then check
 *   -P  progress (on a terminal)   -t / -tt  time and I/O statistics
 * Exit codes as fsck.ocfs2: 0 clean, 1 errors corrected, 4 errors left
 * uncorrected, 8 operational error (also: a repair of a volume in use here
 * or in the cluster is refused, naming the holder), 16 usage error.
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { checkVolume, FSCK_ERROR, FSCK_USAGE } from '../libocfs2/check';
import { Volume } from '../libocfs2/volume';
import { BlockDevice } from '../libocfs2/io';
import { CHECK_OFFSET, updateBlockCheck } from '../libocfs2/blockcheck';
import {
  OCFS2_BLOCK_SIZES, OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG,
  OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG, OCFS2_SUPER_BLOCK_BLKNO, OCFS2_ERROR_FS,
} from '../libocfs2/constants';
import { backupSuperblockBlkno, probeSuperblock, SuperBlock, SUPERBLOCK_OFFSET } from '../libocfs2/structs/superblock';
import { DinodeHeader } from '../libocfs2/structs/dinode';
import { VolumeClaim } from '../libocfs2/claim';
import { liveHeartbeatNodes } from '../libocfs2/rwmount';
import { VolumeBusyError } from '../libocfs2/errors';
import { progressPrinter } from './progress';

/** o2hb's region timeout: a live node writes its block at least this often (O2HB_REGION_TIMEOUT_MS is 2000). */
const HEARTBEAT_WAIT_MS = 2200;

/**
 * Who else uses the volume, as fsck.ocfs2 asks before it starts: this host
 * (the claim: a mount, mkfs or check) and, for a cluster volume, other nodes
 * (live heartbeat; -F skips that look).  A repair (a writer) is refused
 * (VolumeBusyError); -n may share with readers and, with a warning, run
 * beside a writer.
 */
async function claimForCheck(device: string, repair: boolean, heartbeat: { skip: boolean; waitMs: number },
  warn: (m: string) => void): Promise<VolumeClaim | undefined> {
  let claim: VolumeClaim | undefined;
  try {
    claim = VolumeClaim.acquire(device, { mode: repair ? 'write' : 'read', tool: 'check' });
  } catch (e) {
    if (repair || !(e instanceof VolumeBusyError)) throw e;
    warn(`${e.message}: checking read-only; what is being written may show as spurious errors`);
  }
  try {
    const peek = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 }).catch(() => null);
    const local = peek?.localMount ?? true;
    await peek?.close();
    if (!local && !heartbeat.skip) {
      const live = await liveHeartbeatNodes(device, heartbeat.waitMs);
      if (live.length) {
        const msg = `node(s) ${live.join(', ')} heartbeat on ${device}: it is in use by the cluster (mounted on another node; -F skips this check)`;
        if (repair) throw new VolumeBusyError(msg);
        warn(`${msg}: checking read-only; what is being written may show as spurious errors`);
      }
    }
  } catch (e) {
    claim?.release();
    throw e;
  }
  return claim;
}

const PASSES = ['0a', '0b', '0c', '1', '2', '3', '4a', '4b'];

interface CheckFlags {
  n?: boolean; y?: boolean; p?: boolean; a?: boolean; f?: boolean; F?: boolean;
  b?: string; B?: string; r?: string; P?: boolean; t?: number; json?: boolean;
  heartbeatIntervalMs?: string;
}

class UsageError extends Error {}

function num(v: string, what: string): number {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) throw new UsageError(`invalid ${what}: ${v}`);
  return Number(v);
}

/** -b BLOCK [-B SIZE]: the backup index (1..6) at that block. */
function backupAtBlock(blkno: number, bs?: number): number {
  for (const size of bs ? [bs] : OCFS2_BLOCK_SIZES) {
    for (let i = 0; i < 6; i++) if (backupSuperblockBlkno(size, i) === blkno) return i + 1;
  }
  throw new UsageError(`block ${blkno} is not a backup superblock location${bs ? ` at ${bs}-byte blocks` : ''}`);
}

/** recover_backup_super: the backup, with its own block number fixed, becomes the primary. */
async function restoreBackup(device: string, n: number): Promise<void> {
  const dev = await BlockDevice.open(device, { readOnly: false });
  try {
    const probe = await probeSuperblock((off, len) => dev.readAt(off, len), { backup: n });
    const buf = Buffer.from(probe.block);
    DinodeHeader.encode({ ...DinodeHeader.decode(buf, 0), i_blkno: OCFS2_SUPER_BLOCK_BLKNO }, buf, 0);
    if (SuperBlock.decode(buf, SUPERBLOCK_OFFSET).s_feature_incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) {
      updateBlockCheck(buf, CHECK_OFFSET.dinode);
    }
    dev.setBlockSize(probe.blocksize);
    await dev.writeBlocks(OCFS2_SUPER_BLOCK_BLKNO, buf);
    await dev.flush();
  } finally {
    await dev.close();
  }
}

/** fs_is_clean: no reason to check (preen without -f). */
async function cleanReason(device: string): Promise<string | null> {
  const vol = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
  try {
    const r = vol.sb.raw;
    if (vol.sb.incompat & OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG) return null;
    if (vol.sb.incompat & OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG) return null;
    if (r.s_state & OCFS2_ERROR_FS) return null;
    if (r.s_max_mnt_count > 0 && r.s_mnt_count > r.s_max_mnt_count) return null;
    if ((await vol.journalStates()).some((j) => j.dirty)) return null;
    return r.s_max_mnt_count > 0 ? `after ${r.s_max_mnt_count - r.s_mnt_count} additional mounts` : '';
  } finally {
    await vol.close();
  }
}

/** This process's I/O counters (/proc/self/io: rchar, wchar in bytes). */
function procIo(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of fs.readFileSync('/proc/self/io', 'utf8').split('\n')) {
      const m = /^(\w+): (\d+)/.exec(line);
      if (m) out[m[1]!] = Number(m[2]);
    }
  } catch { /* not Linux */ }
  return out;
}

export async function runCheck(device: string, flags: CheckFlags): Promise<number> {
  const out = (l: string): void => { if (!flags.json) process.stdout.write(`${l}\n`); };
  const preen = !!(flags.p || flags.a);
  if (flags.n && (flags.y || preen)) throw new UsageError('-n is incompatible with -y and -p');
  const repair = !!flags.y || preen;
  const bs = flags.B !== undefined ? num(flags.B, 'block size') : undefined;
  if (bs !== undefined && bs !== 0 && !(OCFS2_BLOCK_SIZES as readonly number[]).includes(bs)) throw new UsageError(`invalid blocksize: ${bs}`);
  const backup = flags.b !== undefined ? backupAtBlock(num(flags.b, 'block number'), bs || undefined) : undefined;
  const restore = flags.r !== undefined ? num(flags.r, 'backup number') : undefined;
  if (restore !== undefined && (restore < 1 || restore > 6)) throw new UsageError('-r takes a backup number 1..6');
  if (restore !== undefined && !repair) throw new UsageError('-r restores a superblock: it needs -y or -p');
  if (!fs.existsSync(device)) throw new UsageError(`${device}: no such file or device`);

  const warn = (msg: string): void => { process.stderr.write(`ocfs2-fuse check: warning: ${msg}\n`); };
  const waitMs = flags.heartbeatIntervalMs !== undefined ? Number(flags.heartbeatIntervalMs) : HEARTBEAT_WAIT_MS;
  const claim = await claimForCheck(device, repair, { skip: !!flags.F, waitMs }, warn);
  try {
    return await checkClaimed(device, flags, repair, backup, restore, out);
  } finally {
    claim?.release();
  }
}

async function checkClaimed(device: string, flags: CheckFlags, repair: boolean, backupAt: number | undefined,
  restore: number | undefined, out: (l: string) => void): Promise<number> {
  const preen = !!(flags.p || flags.a);
  let backup = backupAt;
  if (restore !== undefined) {
    await restoreBackup(device, restore);
    out(`Restored backup superblock ${restore} over the primary.`);
    backup = undefined;
  } else if (backup !== undefined && repair) {
    // Repairing from a backup superblock starts by putting it back (fsck.ocfs2 writes the superblock it used).
    await restoreBackup(device, backup);
    backup = undefined;
  }
  if (preen && !flags.f) {
    const reason = await cleanReason(device);
    if (reason !== null) {
      out(`${device} is clean.${reason ? `  It will be checked ${reason}.` : ''}`);
      return 0;
    }
  }

  // Progress and statistics come from the pass lines of the log.
  const progress = flags.P || process.stderr.isTTY ? progressPrinter({ json: flags.json }) : undefined;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const io0 = procIo();
  const passTimes: Array<{ pass: string; at: bigint }> = [];
  let done = 0;
  const log = (l: string): void => {
    const pm = /^Pass (\w+):/.exec(l);
    if (pm) {
      passTimes.push({ pass: pm[1]!, at: process.hrtime.bigint() });
      if (PASSES.includes(pm[1]!)) progress?.('Checking', done++, PASSES.length);
    }
    out(l);
  };
  const r = await checkVolume(device, { repair, log, backupSuperblock: backup });
  progress?.('Checking', PASSES.length, PASSES.length);
  if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  if (flags.t && !flags.json) {
    const end = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    const secs = (ns: bigint): string => (Number(ns) / 1e9).toFixed(2);
    if ((flags.t ?? 0) > 1) {
      passTimes.forEach((p, i) => out(`  Pass ${p.pass}: ${secs((passTimes[i + 1]?.at ?? end) - p.at)}s`));
    }
    const io1 = procIo();
    const mb = (k: string): string => ((((io1[k] ?? 0) - (io0[k] ?? 0)) / 2 ** 20).toFixed(1));
    out(`  Time: real ${secs(end - t0)}s user ${(cpu.user / 1e6).toFixed(2)}s sys ${(cpu.system / 1e6).toFixed(2)}s`);
    out(`  I/O: read ${mb('rchar')} MB, written ${mb('wchar')} MB`);
    out(`  ${r.inodes} inodes, ${r.directories} directories`);
  }
  return r.exitCode;
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('check an OCFS2 volume like fsck.ocfs2 (read-only unless -y or -p)')
    .argument('<device>', 'image file or block device')
    .option('-n', 'check only, change nothing (default)')
    .option('-y', 'repair every problem it can (replays dirty journals first)')
    .option('-p', 'preen: repair what is safe without questions; skip a clean volume unless -f')
    .addOption(new Option('-a', 'same as -p').hideHelp())
    .option('-f', 'force a check of a clean volume (with -p)')
    .option('-F', 'do not check for live heartbeat before repairing')
    .option('-b <block>', 'read the superblock from this (backup) block')
    .option('-B <blocksize>', 'block size for -b (default: probed)')
    .option('-r <n>', 'restore backup superblock n (1..6) over the primary, then check')
    .option('-P', 'show progress (on a terminal)')
    .option('-t', 'show time and I/O statistics (-tt: per pass)', (_v: string, prev: number) => prev + 1, 0)
    .option('--json', 'print the report as JSON')
    .addOption(new Option('--heartbeat-interval-ms <ms>').hideHelp())
    .action(async (device: string, flags: CheckFlags) => {
      try {
        process.exitCode = await runCheck(device, flags);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        process.stderr.write(`ocfs2-fuse check: ${msg}\n`);
        if (process.env.OCFS2_FUSE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
        process.exitCode = e instanceof UsageError ? FSCK_USAGE : FSCK_ERROR;
      }
    });
}
