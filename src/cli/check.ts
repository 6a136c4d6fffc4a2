/**
 * `ocfs2-fuse check [-n|-y] [-f] [--json] DEVICE`: the fsck-style checker.
 * Exit codes as fsck(8): 0 clean, 1 errors corrected, 4 errors left
 * uncorrected, 8 operational error, 16 usage error.
 */
import type { Command } from 'commander';
import { checkVolume, FSCK_ERROR, FSCK_USAGE } from '../libocfs2/check';
import { VolumeClaim } from '../libocfs2/claim';
import { Volume } from '../libocfs2/volume';
import { liveHeartbeatNodes } from '../libocfs2/rwmount';
import { VolumeBusyError } from '../libocfs2/errors';

/** o2hb's region timeout: a live node writes its block at least this often (O2HB_REGION_TIMEOUT_MS is 2000). */
const HEARTBEAT_WAIT_MS = 2200;

/**
 * Who else uses the volume, as fsck.ocfs2 asks before it starts: this host
 * (the claim: a mount, mkfs or check) and, for a cluster volume, other nodes
 * (live heartbeat).  -y (a writer) is refused (VolumeBusyError); -n may
 * share with readers and, with a warning, run beside a writer.
 */
async function claimForCheck(device: string, repair: boolean, warn: (m: string) => void): Promise<VolumeClaim | undefined> {
  let claim: VolumeClaim | undefined;
  try {
    claim = VolumeClaim.acquire(device, { mode: repair ? 'write' : 'read', tool: 'check' });
  } catch (e) {
    if (repair || !(e instanceof VolumeBusyError)) throw e;
    warn(`${e.message}: checking read-only; what is being written may show as spurious errors`);
  }
  try {
    const peek = await Volume.open(device, { readOnly: true, dirtyJournal: 'ignore', cacheBytes: 1 << 20 });
    const local = peek.localMount;
    await peek.close();
    if (!local) {
      const live = await liveHeartbeatNodes(device, HEARTBEAT_WAIT_MS);
      if (live.length) {
        const msg = `node(s) ${live.join(', ')} heartbeat on ${device}: it is in use by the cluster (mounted on another node)`;
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
      const warn = (m: string): void => { process.stderr.write(`ocfs2-fuse check: warning: ${m}\n`); };
      let claim: VolumeClaim | undefined;
      try {
        claim = await claimForCheck(device, !!flags.y, warn);
        const r = await checkVolume(device, { repair: !!flags.y, log: out });
        if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        process.exitCode = r.exitCode;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        process.stderr.write(`ocfs2-fuse check: ${msg}\n`);
        if (process.env.OCFS2_FUSE_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
        process.exitCode = FSCK_ERROR;
      } finally {
        claim?.release();
      }
    });
}
