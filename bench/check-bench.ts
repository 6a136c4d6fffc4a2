/**
 * Benchmark (not a test): `ocfs2-fuse check` (the library, in process) vs
 * `fsck.ocfs2 -fn` on the same images, printed as time ratios.  Images: the
 * populated kernel-written reference images, and a 1 GiB volume made by
 * mkfs.ocfs2 (we have no populated 1 GiB image yet: nothing here writes files).
 *   npx ts-node --transpile-only bench/check-bench.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { checkVolume } from '../src/libocfs2/check';
import { pristineImage } from '../test/lib/refimages';

const PATH = `${process.env.PATH ?? ''}:/sbin:/usr/sbin`;

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ocfs2-check-bench-'));
  try {
    const big = path.join(dir, '1g.img');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 1 << 30);
    spawnSync('timeout', ['300', 'mkfs.ocfs2', '-q', '-F', '-M', 'local', '-N', '4', big], { env: { ...process.env, PATH } });
    const images: Array<[string, string]> = [
      ['local-4k (256 MiB, populated)', pristineImage('local-4k')],
      ['cluster-1k-64k-max (512 MiB, populated, metaecc)', pristineImage('cluster-1k-64k-max')],
      ['mkfs.ocfs2 1 GiB (empty)', big],
    ];
    for (const [name, img] of images) {
      const fsck = await timeIt(() => spawnSync('timeout', ['600', 'fsck.ocfs2', '-fn', img], { env: { ...process.env, PATH } }));
      let problems = 0;
      const ours = await timeIt(async () => { problems = (await checkVolume(img)).problems.length; });
      console.log(`${name}: check ${ours.toFixed(0)} ms, fsck.ocfs2 -fn ${fsck.toFixed(0)} ms, ratio ${(ours / fsck).toFixed(2)} (${problems} problems)`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
