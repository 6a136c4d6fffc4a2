/**
 * Make an o2cb-stack OCFS2 image with mkfs.ocfs2 in a test directory.
 * mkfs.ocfs2 exits 1 after formatting when no o2cb cluster service is running
 * ("Unable to access cluster service while initializing the cluster"), so the
 * exit status is not trusted: the result is checked by reading the superblock.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readVolumeUuid } from '../../src/cluster/heartbeat/locate';

export function makeO2cbImage(dir: string, opts: { name?: string; cluster?: string; slots?: number; sizeMiB?: number } = {}): { image: string; uuid: string } {
  const image = path.join(dir, opts.name ?? 'o2cb.img');
  fs.rmSync(image, { force: true });
  fs.writeFileSync(image, '');
  fs.truncateSync(image, (opts.sizeMiB ?? 128) * 1024 * 1024);
  const r = spawnSync('timeout', ['120', 'mkfs.ocfs2', '-q', '-F', `--cluster-stack=o2cb`, `--cluster-name=${opts.cluster ?? 'hbtest'}`,
    '-N', String(opts.slots ?? 4), '-b', '4096', '-C', '4096', image], { encoding: 'utf8', input: 'y\n' });
  const uuid = readVolumeUuid(image);
  if (!uuid) throw new Error(`mkfs.ocfs2 did not produce a volume (status ${r.status}): ${r.stderr}`);
  return { image, uuid };
}
