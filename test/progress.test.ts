/**
 * What the tools print while they work: mkfs prints mkfs.ocfs2's lines
 * (cluster stack lines, summary, step lines) equal to mkfs.ocfs2's own for
 * the same arguments; progress lines appear on a terminal only (driven
 * through script(1)) and never in a pipe or under -q: mkfs's zeroing,
 * tunefs's slot addition and journal sizing.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { run, sparseImage } from './mkfs-compare';
import { CLI, tmpDir } from './lib/mount';

const dir = tmpDir('progress');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

function onTerminal(cmd: string): string {
  const r = spawnSync('timeout', ['300', 'script', '-qec', cmd, '/dev/null'], { encoding: 'utf8' });
  return r.stdout;
}

t.test('mkfs prints what mkfs.ocfs2 prints', async (t) => {
  const img = path.join(dir, 'mk.img');
  for (const args of [
    ['-N', '2', '--cluster-stack=o2cb', '--cluster-name=cc', '--global-heartbeat'],
    ['-N', '2', '-M', 'local', '-L', 'lab'],
    ['-b', '4k', '-N', '3', '-M', 'local', '--fs-feature-level=max-compat'],
    ['-N', '2', '-b', '512', '-M', 'local', '--fs-features=metaecc'],
  ]) {
    sparseImage(img, 200 * MiB);
    const theirs = run('mkfs.ocfs2', [...args, img]).stdout.replace(/^mkfs\.ocfs2 1\.8\.7\n/, '');
    sparseImage(img, 200 * MiB);
    const ours = run(process.execPath, [CLI, 'mkfs', ...args, img]).stdout.replace(/^mkfs successful$/m, 'mkfs.ocfs2 successful');
    t.equal(ours, theirs, args.join(' '));
  }
  t.match(run(process.execPath, [CLI, 'mkfs', '-N', '2', '--cluster-stack=o2cb', '--cluster-name=cc', '-F', img]).stdout,
    /^Cluster stack: o2cb\nCluster name: cc\nStack Flags: 0x0\nNOTE: Feature extended slot map may be enabled\n/);
});

t.test('progress on a terminal, none in a pipe or with -q', async (t) => {
  const img = path.join(dir, 'big.img');
  sparseImage(img, 3 * 1024 * MiB);
  const tty = onTerminal(`${process.execPath} ${CLI} mkfs -F -M local -N 2 ${img}`);
  t.match(tty, /\rZeroing: 100% \(\d+\/\d+\)/, 'mkfs: zeroing progress on the terminal');
  const pipe = run(process.execPath, [CLI, 'mkfs', '-F', '-M', 'local', '-N', '2', img]);
  t.notMatch(pipe.stdout + pipe.stderr, /Zeroing: \d+%/, 'mkfs: none in a pipe');
  const quiet = onTerminal(`${process.execPath} ${CLI} mkfs -q -F -M local -N 2 ${img}`);
  t.notMatch(quiet, /\S/, 'mkfs -q: nothing at all, even on a terminal');

  const tune = onTerminal(`${process.execPath} ${CLI} tunefs -N 4 ${img}`);
  t.match(tune, /\rAdding slots: 100% \(\d+\/\d+\)/, 'tunefs -N: slot progress');
  t.match(tune, /\rSetting journal size: 100% \(4\/4\)/, 'tunefs -N: journal progress');
  const tunePipe = run(process.execPath, [CLI, 'tunefs', '-J', 'size=8M', img]);
  t.equal(tunePipe.status, 0, tunePipe.stderr);
  t.equal(tunePipe.stdout + tunePipe.stderr, '', 'tunefs in a pipe: silent');
  const tuneQ = onTerminal(`${process.execPath} ${CLI} tunefs -q -J size=16M ${img}`);
  t.notMatch(tuneQ, /\S/, 'tunefs -q: silent on a terminal');
});
