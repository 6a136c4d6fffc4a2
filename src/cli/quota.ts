/**
 * `ocfs2-fuse quota report|get|set DEVICE ...`: repquota / quota / setquota
 * for an OCFS2 volume (FUSE does not pass quotactl).  report and get read the
 * global quota files (a dirty journal replayed in memory, so a mounted volume
 * shows what its last commit left); set writes limits and grace times on an
 * unmounted volume through the journaled read-write open.
 */
import type { Command } from 'commander';
import { Volume } from '../libocfs2/volume';
import { VolumeClaim } from '../libocfs2/claim';
import { openFsVolume } from '../libocfs2/fs/open';
import {
  GRPQUOTA, QUOTA_TYPE_NAMES, USRQUOTA, quotaReport, quotaTypes, setQuotaGrace, setQuotaLimits, type Dquot, type QuotaLimits, type QuotaType,
} from '../libocfs2/quota';
import { Ocfs2Error } from '../libocfs2/errors';

interface TypeFlags { user?: boolean; group?: boolean; json?: boolean }

function chosenTypes(vol: Volume, f: TypeFlags): QuotaType[] {
  const have = quotaTypes(vol);
  if (!have.length) throw new Ocfs2Error(`${vol.dev.path}: the volume has no quota features (usrquota/grpquota)`);
  const want: QuotaType[] = f.user || f.group ? [...(f.user ? [USRQUOTA] : []), ...(f.group ? [GRPQUOTA] : [])] as QuotaType[] : have;
  for (const t of want) if (!have.includes(t)) throw new Ocfs2Error(`${vol.dev.path}: ${QUOTA_TYPE_NAMES[t]} quotas are not enabled on this volume`);
  return want;
}

function dquotJson(q: Dquot): Record<string, string | number> {
  return {
    id: q.id, spaceBytes: q.curspace.toString(), spaceSoftBytes: q.bsoftlimit.toString(), spaceHardBytes: q.bhardlimit.toString(),
    spaceGraceUntil: Number(q.btime), inodes: q.curinodes.toString(), inodeSoft: q.isoftlimit.toString(), inodeHard: q.ihardlimit.toString(),
    inodeGraceUntil: Number(q.itime),
  };
}

function graceText(t: bigint): string {
  if (!t) return '-';
  const left = Number(t) - Math.floor(Date.now() / 1000);
  if (left <= 0) return 'none';
  return left >= 86400 ? `${Math.ceil(left / 86400)}days` : `${Math.floor(left / 3600)}:${String(Math.floor((left % 3600) / 60)).padStart(2, '0')}`;
}

/** repquota's layout: space in KiB. */
function reportText(type: QuotaType, dquots: Dquot[]): string {
  const kib = (b: bigint) => ((b + 1023n) / 1024n).toString();
  const lines = [`*** Report for ${QUOTA_TYPE_NAMES[type]} quotas`,
    `${'id'.padEnd(10)} ${'used KiB'.padStart(12)} ${'soft'.padStart(10)} ${'hard'.padStart(10)} ${'grace'.padStart(7)} ${'files'.padStart(9)} ${'soft'.padStart(8)} ${'hard'.padStart(8)} ${'grace'.padStart(7)}`];
  for (const q of dquots) {
    lines.push(`${String(q.id).padEnd(10)} ${kib(q.curspace).padStart(12)} ${kib(q.bsoftlimit).padStart(10)} ${kib(q.bhardlimit).padStart(10)} ${graceText(q.btime).padStart(7)} `
      + `${q.curinodes.toString().padStart(9)} ${q.isoftlimit.toString().padStart(8)} ${q.ihardlimit.toString().padStart(8)} ${graceText(q.itime).padStart(7)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A size: bytes, or with a K/M/G/T suffix (powers of 1024). */
export function parseSize(s: string): bigint {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Ocfs2Error(`"${s}" is not a size (bytes, or a number with K, M, G or T)`);
  const mul = { '': 1n, K: 1024n, M: 1024n ** 2n, G: 1024n ** 3n, T: 1024n ** 4n }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return BigInt(m[1]!) * mul;
}

function parseCount(s: string): bigint {
  if (!/^\d+$/.test(s)) throw new Ocfs2Error(`"${s}" is not a count`);
  return BigInt(s);
}

function parseId(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 0xffffffff) throw new Ocfs2Error(`"${s}" is not a numeric user or group id`);
  return Number(s);
}

async function openRead(device: string): Promise<Volume> {
  return Volume.open(device, { readOnly: true, dirtyJournal: 'overlay' });
}

export function registerQuotaCommand(program: Command): void {
  const quota = program.command('quota').description('user and group quotas of a volume (repquota, quota, setquota)');
  quota
    .command('report')
    .description('every id of the global quota files: usage, limits, grace')
    .argument('<device>', 'image file or block device')
    .option('-u, --user', 'user quotas').option('-g, --group', 'group quotas').option('--json', 'print JSON')
    .action(async (device: string, f: TypeFlags) => {
      const vol = await openRead(device);
      try {
        const out: Record<string, unknown> = {};
        let text = '';
        for (const t of chosenTypes(vol, f)) {
          const r = await quotaReport(vol, t);
          out[QUOTA_TYPE_NAMES[t]] = { blockGraceSeconds: r.info.bgrace, inodeGraceSeconds: r.info.igrace, dquots: r.dquots.map(dquotJson) };
          text += reportText(t, r.dquots);
        }
        process.stdout.write(f.json ? `${JSON.stringify(out, null, 2)}\n` : text);
      } finally { await vol.close(); }
    });
  quota
    .command('get')
    .description('one id\'s usage and limits')
    .argument('<device>', 'image file or block device').argument('<id>', 'numeric uid (-u) or gid (-g)')
    .option('-u, --user', 'a user id (default)').option('-g, --group', 'a group id').option('--json', 'print JSON')
    .action(async (device: string, idArg: string, f: TypeFlags) => {
      const id = parseId(idArg);
      const vol = await openRead(device);
      try {
        const t = chosenTypes(vol, { user: !f.group, group: f.group })[0]!;
        const q = (await quotaReport(vol, t)).dquots.find((d) => d.id === id);
        const shown: Dquot = q ?? { id, useCount: 0, bhardlimit: 0n, bsoftlimit: 0n, curspace: 0n, btime: 0n, ihardlimit: 0n, isoftlimit: 0n, curinodes: 0n, itime: 0n };
        process.stdout.write(f.json ? `${JSON.stringify({ type: QUOTA_TYPE_NAMES[t], ...dquotJson(shown) }, null, 2)}\n` : reportText(t, [shown]));
      } finally { await vol.close(); }
    });
  quota
    .command('set')
    .description('set limits (space in bytes or with K/M/G/T; 0 = no limit) and grace periods, on an unmounted volume')
    .argument('<device>', 'image file or block device').argument('[id]', 'numeric uid (-u) or gid (-g)')
    .option('-u, --user', 'a user id (default)').option('-g, --group', 'a group id')
    .option('--bsoft <size>', 'space soft limit').option('--bhard <size>', 'space hard limit')
    .option('--isoft <n>', 'inode soft limit').option('--ihard <n>', 'inode hard limit')
    .option('--block-grace <seconds>', 'space grace period of the whole volume').option('--inode-grace <seconds>', 'inode grace period of the whole volume')
    .option('--json', 'print the result as JSON')
    .action(async (device: string, idArg: string | undefined, f: TypeFlags & { bsoft?: string; bhard?: string; isoft?: string; ihard?: string; blockGrace?: string; inodeGrace?: string }) => {
      const limits: QuotaLimits = {
        bsoftlimit: f.bsoft !== undefined ? parseSize(f.bsoft) : undefined, bhardlimit: f.bhard !== undefined ? parseSize(f.bhard) : undefined,
        isoftlimit: f.isoft !== undefined ? parseCount(f.isoft) : undefined, ihardlimit: f.ihard !== undefined ? parseCount(f.ihard) : undefined,
      };
      const anyLimit = Object.values(limits).some((v) => v !== undefined);
      const grace = f.blockGrace !== undefined || f.inodeGrace !== undefined;
      if (anyLimit && idArg === undefined) throw new Ocfs2Error('quota set: limits need an id');
      if (!anyLimit && !grace) throw new Ocfs2Error('quota set: nothing to set (--bsoft, --bhard, --isoft, --ihard, --block-grace, --inode-grace)');
      const id = idArg !== undefined ? parseId(idArg) : 0;
      const claim = VolumeClaim.acquire(device, { mode: 'write', tool: 'quota set' });
      try {
        const fv = await openFsVolume(device, {});
        try {
          const t = chosenTypes(fv.vol, { user: !f.group, group: f.group })[0]!;
          const io = { vol: fv.vol, alloc: fv.alloc, extentTree: fv.extentTree };
          let q: Dquot | undefined;
          await fv.tm.run(async (tx) => {
            if (grace) {
              const cur = (await quotaReport(fv.vol, t)).info;
              await setQuotaGrace(tx, fv.vol, t, f.blockGrace !== undefined ? Number(parseCount(f.blockGrace)) : cur.bgrace,
                f.inodeGrace !== undefined ? Number(parseCount(f.inodeGrace)) : cur.igrace);
            }
            if (anyLimit) q = await setQuotaLimits(tx, io, t, id, limits);
          });
          if (q) process.stdout.write(f.json ? `${JSON.stringify({ type: QUOTA_TYPE_NAMES[t], ...dquotJson(q) }, null, 2)}\n` : reportText(t, [q]));
        } finally { await fv.close(); }
      } finally { claim.release(); }
    });
}
