/**
 * `ocfs2-fuse check` options and exit codes as fsck.ocfs2's, through the
 * real CLI: -p (preen; a clean volume is skipped unless -f), -y, -n, exit 1
 * when everything was corrected (and no "left uncorrected" line), 4 when
 * something is left, 16 for usage errors, 8 when a repair of a mounted
 * volume (naming the holder) or of one with live heartbeat (unless -F) is
 * refused; -b/-B read a backup superblock, -r restores one (fsck.ocfs2 then accepts the volume); -P
 * progress on a terminal only (driven through script(1)), -t/-tt statistics.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { copyOfImage } from './lib/refimages';
import { CLI, mountRo, tmpDir } from './lib/mount';
import { fsckClean, refMkfs, run, sparseImage } from './mkfs-compare';
import * as D from './check-damage';
import { fakeHeartbeat } from './lib/fake-heartbeat';

const dir = tmpDir('check-opts');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

const check = (args: string[]): { status: number; stdout: string; stderr: string } => run(process.execPath, [CLI, 'check', ...args]);

function fresh(name: string, bytes = 300 * MiB, args: string[] = ['-M', 'local', '-N', '2']): string {
  const f = path.join(dir, name);
  sparseImage(f, bytes);
  refMkfs(f, args);
  return f;
}

t.test('preen, force and the clean volume', async (t) => {
  const img = fresh('clean.img');
  const p = check(['-p', img]);
  t.equal(p.status, 0);
  t.equal(p.stdout, `${img} is clean.  It will be checked after 20 additional mounts.\n`);
  t.notMatch(p.stdout, /Pass 1/, 'not checked');
  const pf = check(['-pf', img]);
  t.equal(pf.status, 0);
  t.match(pf.stdout, /Pass 4b[\s\S]*All passes succeeded\.\n$/);
  const n = check(['-n', img]);
  t.equal(n.status, 0);
  t.match(n.stdout, /Pass 1/, '-n always checks');
  const bad = check(['-n', '-y', img]);
  t.equal(bad.status, 16, '-n with -y is a usage error');
  t.equal(check(['-n', '-p', img]).status, 16);
  t.equal(check(['-n', path.join(dir, 'missing.img')]).status, 16);
});

t.test('exit codes: corrected 1, left 4; a full repair never says "left uncorrected"', async (t) => {
  for (const [flag, damage] of [['-y', D.damageGroupFreeCount], ['-pf', D.damageLinkCount], ['-y', (i: string) => D.damageBrokenChain(i)]] as const) {
    const img = copyOfImage('local-4k', dir);
    await damage(img);
    const n = check(['-n', img]);
    t.equal(n.status, 4, `${flag}: -n finds the damage (exit 4)`);
    t.match(n.stdout, /problem\(s\) left uncorrected/);
    if (flag === '-pf') {
      // Preen without -f trusts the clean superblock state, as fsck.ocfs2 -p does.
      t.match(check(['-p', img]).stdout, /is clean\./);
    }
    const y = check([flag, img]);
    t.equal(y.status, 1, `${flag}: corrected (exit 1)`);
    t.notMatch(y.stdout, /left uncorrected/);
    t.match(y.stdout, /All passes succeeded: \d+ problem\(s\) corrected\./);
    t.equal(check(['-n', img]).status, 0, `${flag}: clean afterwards`);
    t.ok(fsckClean(img).ok, 'fsck.ocfs2 agrees');
  }
  const img = copyOfImage('local-4k', dir);
  await D.damageDoubleClaim(img);
  const y = check(['-y', img]);
  t.equal(y.status, 4, 'doubly claimed clusters are left: exit 4');
  t.match(y.stdout, /problem\(s\) left uncorrected/);
});

t.test('backup superblocks: -b/-B read one, -r restores one', async (t) => {
  const img = fresh('backup.img', 1200 * MiB, ['-M', 'local', '-N', '2', '-b', '4k']);
  const fd = fs.openSync(img, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 2 * 4096);
  fs.closeSync(fd);
  const n = check(['-n', img]);
  t.equal(n.status, 8, 'no primary superblock: operational error');
  t.match(n.stderr, /not an OCFS2 volume/);
  const b = check(['-n', '-b', '262144', '-B', '4096', img]);
  t.equal(b.status, 0, b.stderr);
  t.match(b.stdout, /All passes succeeded/);
  t.equal(check(['-n', '-b', '262144', img]).status, 0, 'block size probed');
  t.equal(check(['-n', '-b', '12345', img]).status, 16, 'not a backup location');
  t.equal(check(['-n', '-r', '1', img]).status, 16, '-r needs -y or -p');
  const r = check(['-y', '-r', '1', img]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Restored backup superblock 1/);
  t.ok(fsckClean(img).ok, 'fsck.ocfs2 opens and passes the restored volume');
  t.equal(check(['-n', img]).status, 0);
});

t.test('refusals: a mounted volume, live heartbeat (unless -F)', async (t) => {
  const img = fresh('mounted.img');
  const m = mountRo(img);
  try {
    const y = check(['-y', img]);
    t.equal(y.status, 8, 'repair of a mounted volume refused');
    t.match(y.stderr, /mounted read-only on .* by pid \d+/, 'naming the holder');
    const n = check(['-n', img]);
    t.equal(n.status, 0, 'a reader beside a reader');
  } finally {
    m.unmount();
  }

  const cl = fresh('hb.img', 256 * MiB, ['-N', '4', '--cluster-stack=o2cb', '--cluster-name=hbc']);
  const hb = fakeHeartbeat(cl, 5);
  const runAsync = (args: string[]): Promise<{ code: number; out: string }> => new Promise((resolve) => {
    const p = spawn('timeout', ['120', process.execPath, CLI, 'check', ...args]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
  try {
    const y = await runAsync(['-y', '--heartbeat-interval-ms', '800', cl]);
    t.equal(y.code, 8);
    t.match(y.out, /node\(s\) 5 heartbeat on/);
    const f = await runAsync(['-y', '-F', cl]);
    t.equal(f.code, 0, f.out);
  } finally {
    hb.stop();
  }
});

t.test('-P progress on a terminal only; -t and -tt statistics', async (t) => {
  const img = fresh('progress.img');
  const cmd = `${process.execPath} ${CLI} check -P ${img}`;
  const pty = spawnSync('timeout', ['120', 'script', '-qec', cmd, '/dev/null'], { encoding: 'utf8' });
  t.equal(pty.status, 0, pty.stderr);
  t.match(pty.stdout, /\rChecking: 100% \(8\/8\)/, 'progress line on the terminal');
  const pipe = check(['-P', img]);
  t.notMatch(pipe.stdout + pipe.stderr, /Checking: \d+%/, 'none in a pipe');
  const json = spawnSync('timeout', ['120', 'script', '-qec', `${cmd} --json`, '/dev/null'], { encoding: 'utf8' });
  t.notMatch(json.stdout, /Checking: \d+%/, 'none with --json');
  const st = check(['-t', img]);
  t.match(st.stdout, /Time: real [\d.]+s user [\d.]+s sys [\d.]+s\n {2}I\/O: read [\d.]+ MB, written [\d.]+ MB/);
  t.notMatch(st.stdout, /Pass 1: [\d.]+s/);
  const tt = check(['-tt', img]);
  t.match(tt.stdout, /Pass 1: [\d.]+s/);
});
