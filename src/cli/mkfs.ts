/**
 * `ocfs2-fuse mkfs [options] DEVICE [BLOCKS]`: the options of mkfs.ocfs2
 * 1.8.7, calling formatVolume.  Progress goes to stderr on a terminal only.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { Command, Option } from 'commander';
import { VolumeClaim } from '../libocfs2/claim';
import { formatVolume, MkfsError, type FormatResult } from '../libocfs2/mkfs/format';
import { parseJournalOptions, parseSize, type FeatureLevel, type FsType, type MkfsOptions } from '../libocfs2/mkfs/options';

export interface MkfsCliOptions {
  blockSize?: string;
  clusterSize?: string;
  nodeSlots?: string;
  label?: string;
  journalOptions?: string;
  mount?: string;
  type?: string;
  uuid?: string;
  clusterStack?: string;
  clusterName?: string;
  globalHeartbeat?: boolean;
  fsFeatures?: string;
  fsFeatureLevel?: string;
  backupSuper?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
  force?: boolean;
}

/** Translate command-line values into MkfsOptions (throws MkfsError on bad input). */
export function toMkfsOptions(o: MkfsCliOptions, blocks?: string): MkfsOptions {
  const out: MkfsOptions = {};
  if (o.blockSize !== undefined) out.blockSize = parseSize(o.blockSize);
  if (o.clusterSize !== undefined) out.clusterSize = parseSize(o.clusterSize);
  if (o.nodeSlots !== undefined) {
    if (!/^\d+$/.test(o.nodeSlots)) throw new MkfsError(`bad number of node slots "${o.nodeSlots}"`);
    out.slots = Number(o.nodeSlots);
  }
  if (o.label !== undefined) out.label = o.label;
  if (o.journalOptions !== undefined) {
    const j = parseJournalOptions(o.journalOptions);
    if (j.size !== undefined) out.journalSize = j.size;
    if (j.journal64 !== undefined) out.journal64 = j.journal64;
  }
  if (o.mount !== undefined) {
    const m = o.mount.toLowerCase();
    if (m.startsWith('local')) out.mount = 'local';
    else if (m.startsWith('cluster')) out.mount = 'cluster';
    else throw new MkfsError(`invalid mount type ${o.mount}`);
  }
  if (o.type !== undefined) {
    if (!['mail', 'datafiles', 'vmstore'].includes(o.type)) throw new MkfsError(`bad fs type "${o.type}": use mail, datafiles or vmstore`);
    out.fsType = o.type as FsType;
  }
  if (o.fsFeatureLevel !== undefined) {
    if (!['default', 'max-compat', 'max-features'].includes(o.fsFeatureLevel)) {
      throw new MkfsError(`bad --fs-feature-level "${o.fsFeatureLevel}": use default, max-compat or max-features`);
    }
    out.featureLevel = o.fsFeatureLevel as FeatureLevel;
  }
  if (o.fsFeatures !== undefined) out.features = o.fsFeatures;
  if (o.uuid !== undefined) out.uuid = o.uuid;
  if (o.clusterStack !== undefined) out.clusterStack = o.clusterStack;
  if (o.clusterName !== undefined) out.clusterName = o.clusterName;
  if (o.globalHeartbeat) out.globalHeartbeat = true;
  if (o.backupSuper === false) out.noBackupSuper = true;
  if (o.dryRun) out.dryRun = true;
  if (o.quiet) out.quiet = true;
  if (o.force) out.force = true;
  if (blocks !== undefined) {
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(blocks)) throw new MkfsError(`block count bad - ${blocks}`);
    out.blocks = Number(blocks);
  }
  return out;
}

/** Add the mkfs.ocfs2 options to a command. */
export function addMkfsOptions(cmd: Command): Command {
  return cmd
    .argument('<device>', 'block device or image file')
    .argument('[blocks]', 'number of blocks to use (default: the whole device)')
    .option('-b, --block-size <size>', 'block size: 512, 1K, 2K or 4K (default: by volume size)')
    .option('-C, --cluster-size <size>', 'cluster size: 4K .. 1M (default: by volume size and -T)')
    .option('-N, --node-slots <n>', 'node slots (default: 1 local, else by volume size)')
    .option('-L, --label <label>', 'volume label')
    .option('-J, --journal-options <opts>', 'journal options: size=<bytes>, [no]block32, [no]block64')
    .option('-M, --mount <type>', 'mount type: local or cluster')
    .option('-T, --type <type>', 'file system type: mail, datafiles or vmstore')
    .option('-U, --uuid <uuid>', 'volume UUID')
    .option('--cluster-stack <stack>', 'cluster stack (o2cb)')
    .option('--cluster-name <name>', 'cluster name')
    .option('--global-heartbeat', 'global heartbeat mode (o2cb)')
    .option('--fs-features <list>', 'features to turn on, or off with a "no" prefix (e.g. metaecc,noinline-data)')
    .option('--fs-feature-level <level>', 'default, max-compat or max-features')
    .option('--no-backup-super', 'do not write backup superblocks')
    .option('-n, --dry-run', 'show what would be done, write nothing')
    .option('-q, --quiet', 'no output')
    .option('-F, --force', 'format without asking, even over an existing filesystem, or with live heartbeat of other nodes')
    .addOption(new Option('-v, --verbose', 'accepted for compatibility').hideHelp())
    .addOption(new Option('-x', 'accepted for compatibility (no prompt)').hideHelp());
}

function progressPrinter(): ((phase: string, done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (phase, done, total) => {
    const pct = total ? Math.floor((done * 100) / total) : 100;
    process.stderr.write(`\r${phase}: ${pct}%${done >= total ? '\n' : ''}`);
  };
}

/** Run mkfs for a device with command-line values; prints like mkfs.ocfs2. */
export async function runMkfs(device: string, blocks: string | undefined, o: MkfsCliOptions, progname = 'mkfs'): Promise<FormatResult> {
  const opts = toMkfsOptions(o, blocks);
  const out = (l: string): void => { process.stdout.write(`${l}\n`); };
  // One writer at a time (claim.ts): never format a volume mounted or being checked here, -F or not.
  // (A missing path or a directory is left to formatVolume, which says so in mkfs.ocfs2's words.)
  const st = fs.statSync(device, { throwIfNoEntry: false });
  const claim = opts.dryRun || !(st?.isFile() || st?.isBlockDevice()) ? undefined : VolumeClaim.acquire(device, { mode: 'write', tool: 'mkfs' });
  try {
    const r = await formatVolume(device, opts, { log: out, progress: opts.quiet ? undefined : progressPrinter(), confirmOverwrite });
    if (!opts.quiet) out(r.dryRun ? 'Dry run: nothing written.' : `${progname} successful`);
    return r;
  } finally {
    claim?.release();
  }
}

/** mkfs.ocfs2's question before overwriting a filesystem; only a terminal can answer it. */
async function confirmOverwrite(type: string): Promise<boolean> {
  process.stdout.write(`Overwriting existing ${type} partition.\n`);
  if (!process.stdin.isTTY) return false;
  process.stdout.write('Proceed (y/N): ');
  const rl = readline.createInterface({ input: process.stdin });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export function registerMkfsCommand(program: Command): void {
  addMkfsOptions(program.command('mkfs').description('make an OCFS2 volume (options of mkfs.ocfs2)'))
    .action(async (device: string, blocks: string | undefined, o: MkfsCliOptions) => {
      await runMkfs(device, blocks, o);
    });
}

/**
 * The standalone `mkfs.ocfs2`-style entry point (tools/mkfs.ocfs2): same
 * options, errors as one line "mkfs.ocfs2: ..." and exit 1.
 */
export async function runMkfsTool(argv: string[], progname = 'mkfs.ocfs2'): Promise<number> {
  const program = addMkfsOptions(new Command(progname))
    .description('make an OCFS2 volume (ocfs2-fuse)')
    .exitOverride()
    .showHelpAfterError();
  program.action(async (device: string, blocks: string | undefined, o: MkfsCliOptions) => {
    await runMkfs(device, blocks, o, progname);
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as { exitCode?: number; code?: string; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode ?? 1;
    process.stderr.write(`${progname}: ${e.message ?? String(err)}\n`);
    if (process.env.OCFS2_FUSE_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
