/**
 * `ocfs2-fuse check [-n|-y] [-f] [--json] DEVICE`: the fsck-style checker.
 * Exit codes as fsck(8): 0 clean, 1 errors corrected, 4 errors left
 * uncorrected, 8 operational error, 16 usage error.
 */
import type { Command } from 'commander';
import { checkVolume, FSCK_ERROR, FSCK_USAGE } from '../libocfs2/check';

interface CheckFlags { n?: boolean; y?: boolean; f?: boolean; json?: boolean }

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('check an OCFS2 volume like fsck.ocfs2 (read-only unless -y)')
    .argument('<device>', 'image file or block device')
    .option('-n', 'check only, change nothing (default)')
    .option('-y', 'repair what can be repaired safely (replays dirty journals first)')
    .option('-f', 'force checking (always on: every run is a full check)')
    .option('--json', 'print the report as JSON')
    .action(async (device: string, flags: CheckFlags) => {
      if (flags.n && flags.y) {
        process.stderr.write('ocfs2-fuse check: -n and -y are mutually exclusive\n');
        process.exitCode = FSCK_USAGE;
        return;
      }
      const out = (l: string): void => { if (!flags.json) process.stdout.write(`${l}\n`); };
      try {
        const r = await checkVolume(device, { repair: !!flags.y, log: out });
        if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        process.exitCode = r.exitCode;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        process.stderr.write(`ocfs2-fuse check: ${msg}\n`);
        if (process.env.OCFS2_FUSE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
        process.exitCode = FSCK_ERROR;
      }
    });
}
