/**
 * mkfs benchmark (not a test): format a 1 TiB sparse image with our mkfs and
 * with mkfs.ocfs2 (same arguments: defaults, 8 slots), each on a fresh
 * image, and print the times and their ratio.  Image files go to TMPDIR.
 *
 *   node dist/bench/mkfs-bench.js [sizeGiB]      (or via `make bench`)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

const GIB = Number(process.argv[2] ?? process.env.MKFS_BENCH_GIB ?? 1024);
const ARGS = ['-q', '-F', '-N', '8'];
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

function fresh(file: string): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, GIB * 2 ** 30);
}

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync('timeout', ['3600', cmd, ...args], { encoding: 'utf8', env, input: 'y\ny\n' });
  const ms = performance.now() - t0;
  if (r.status !== 0 && cmd !== 'mkfs.ocfs2') throw new Error(`${cmd} failed: ${r.stderr}`);
  return ms;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mkfs-bench-'));
try {
  const img = path.join(dir, 'bench.img');
  fresh(img);
  const ref = timed('mkfs.ocfs2', [...ARGS, img]);
  fresh(img);
  const ours = timed(process.execPath, [CLI, 'mkfs', ...ARGS, img]);
  console.log(`mkfs of a ${GIB} GiB sparse image (${ARGS.join(' ')}):`);
  console.log(`  mkfs.ocfs2   ${(ref / 1000).toFixed(2)} s`);
  console.log(`  ocfs2-fuse   ${(ours / 1000).toFixed(2)} s`);
  console.log(`  ratio ours/mkfs.ocfs2 = ${(ours / ref).toFixed(2)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
