/**
 * The mount daemon's life cycle: SIGTERM/SIGINT unmount cleanly, an external
 * `fusermount3 -u` ends the daemon, a dirty journal can be refused, and every
 * mkfs.ocfs2 fixture geometry mounts with statfs matching the global bitmap.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { pristineImage } from './lib/refimages';
import { CLI, mountRo, runCli, sh, tmpDir, unmount } from './lib/mount';

function isMounted(mnt: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

function exitOf(child: ChildProcess, ms: number): Promise<number | string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    child.on('exit', (code, sig) => { clearTimeout(timer); resolve(code ?? String(sig)); });
  });
}

for (const how of ['SIGTERM', 'SIGINT', 'fusermount3'] as const) {
  t.test(`foreground daemon ends cleanly on ${how}`, async (t) => {
    const mnt = tmpDir('life');
    const child = spawn(process.execPath, [CLI, '-o', 'ro', '-f', pristineImage('local-4k'), mnt], { stdio: 'ignore' });
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); unmount(mnt); fs.rmSync(mnt, { recursive: true, force: true }); });
    t.ok(await waitFor(() => isMounted(mnt), 30_000), 'mounted');
    t.ok(fs.existsSync(path.join(mnt, 'random-1m.bin')), 'serving');
    const exited = exitOf(child, 20_000);
    if (how === 'fusermount3') spawnSync('timeout', ['20', 'fusermount3', '-u', mnt]);
    else child.kill(how);
    t.equal(await exited, 0, 'daemon exits 0');
    t.notOk(isMounted(mnt), 'no longer mounted');
  });
}

t.test('--dirty-journal refuse names the slot', async (t) => {
  const mnt = tmpDir('dirty');
  t.teardown(() => { unmount(mnt); fs.rmSync(mnt, { recursive: true, force: true }); });
  const r = runCli(['-o', 'ro', '--dirty-journal', 'refuse', pristineImage('dirty-journal-4k'), mnt], 60);
  t.not(r.status, 0);
  t.match(r.stderr, /journal of slot 0 needs recovery/);
  t.notOk(isMounted(mnt));
});

t.test('mkfs.ocfs2 fixture geometries mount; statfs matches the global bitmap', async (t) => {
  const dir = tmpDir('fixtures');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  sh(`bash images/make-fixtures.sh ${dir}`, 600);
  const images = fs.readdirSync(dir).filter((f) => f.endsWith('.img'));
  t.ok(images.length >= 5, `${images.length} fixtures`);
  for (const f of images) {
    const img = path.join(dir, f);
    const stats = sh(`debugfs.ocfs2 -R "stat //global_bitmap" ${img} 2>/dev/null`);
    const total = Number(/Bitmap Total: (\d+)/.exec(stats)![1]);
    const used = Number(/Used: (\d+)/.exec(stats)![1]);
    const cs = 2 ** Number(/Cluster Size Bits: (\d+)/.exec(sh(`debugfs.ocfs2 -R stats ${img} 2>/dev/null`))![1]);
    const m = mountRo(img);
    try {
      t.same(fs.readdirSync(m.mountpoint).sort(), ['lost+found'], `${f}: root lists lost+found`);
      const st = fs.statfsSync(m.mountpoint);
      t.equal(st.blocks * st.bsize, total * cs, `${f}: statfs size = bitmap total`);
      t.equal(st.bfree * st.bsize, (total - used) * cs, `${f}: statfs free = bitmap free`);
      t.equal(fs.statSync(path.join(m.mountpoint, 'lost+found')).nlink, 2, `${f}: lost+found nlink`);
    } finally {
      m.unmount();
    }
  }
});
