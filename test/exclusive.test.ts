/**
 * Issue 8: never two writers, never a dirty volume left behind.
 *
 * Each case runs the real CLI (dist/) on a real image or loop device:
 *  - two read-write mounts of one image, of one loop device, of two loop
 *    devices over one file (local and cluster volumes): the second is
 *    refused naming the mount point and pid; the first keeps its data;
 *  - check -y and mkfs against a mounted volume: refused, no byte changed;
 *  - SIGTERM/SIGINT to an idle and a busy daemon (foreground and background):
 *    a clean unmount (fsck.ocfs2 -fn clean, no dirty journal, slot map empty),
 *    a busy mount says so and keeps serving;
 *  - mkfs over an existing volume without -F: exit 1, no byte changed;
 *  - a bad -o, and a failure after the volume was opened: named, volume
 *    byte-identical;
 *  - unknown subcommands and options;
 *  - cluster volumes: no configuration -> rw refused with the way out (-o ro
 *    works); the rw mount heartbeats for its life and stops with generation 0;
 *    a mount and check -y refuse while another node heartbeats.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, runCli, tmpDir } from './lib/mount';
import { startRwDaemon, fsckOcfs2, mkfsOcfs2, detach, SBIN_ENV, type RwDaemon } from './lib/rwdaemon';
import { attachLoop, detachLoop } from './lib/netns';
import { loopDevicesMissing, requireJudge } from './lib/judges';
import { makeO2cbImage } from './lib/o2cb-image';
import { makeNodes, writeCluster, spawnNode, until, WAIT_MS, type NodeProc } from './o2net-harness';

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** debugfs.ocfs2 -R slotmap: the (slot, node) rows. */
function slotmapRows(dev: string): string[] {
  const r = spawnSync('timeout', ['60', 'debugfs.ocfs2', '-R', 'slotmap', dev], { env: SBIN_ENV, encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => /^\s*\d+\s+\d+\s*$/.test(l)).map((l) => l.trim());
}

/** The clean-unmount state: fsck -fn clean (no replay skipped), no slot taken. */
function assertClean(t: Test, dev: string, what: string): void {
  const f = fsckOcfs2(dev);
  t.ok(f.clean, `${what}: fsck.ocfs2 -fn clean, no dirty journal`, { out: f.out });
  t.same(slotmapRows(dev), [], `${what}: debugfs.ocfs2 slotmap empty`);
  const ours = runCli(['check', '-n', dev]);
  t.notMatch(ours.stdout, /journal .* is dirty/, `${what}: no journal marked dirty (our check -n)`, { out: ours.stdout });
}

function mountDirs(t: Test, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(tmpDir('excl-mnt'));
  t.teardown(() => { for (const m of out) { detach(m); try { fs.rmdirSync(m); } catch { /* busy */ } } });
  return out;
}

/** A second mount attempt (background mode: returns when it failed or mounted). */
function mountCli(args: string[]): { status: number; stderr: string } {
  const r = runCli(args, 180);
  return { status: r.status, stderr: r.stderr };
}

t.test('local volume (image file): one writer, or readers', async (t) => {
  const dir = tmpDir('excl');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'v.img');
  mkfsOcfs2(img, 128);
  const [ma, mb] = mountDirs(t, 2) as [string, string];
  const d = await startRwDaemon(img, ma);
  t.teardown(() => d.kill());
  fs.writeFileSync(path.join(ma, 'keep'), 'written through the first mount\n');

  const second = mountCli([img, mb]);
  t.equal(second.status, 1, 'second read-write mount refused');
  t.match(second.stderr, new RegExp(`mounted read-write on ${ma} by pid ${d.pid}`), 'the refusal names mount point and pid');
  const ro = mountCli(['-o', 'ro', img, mb]);
  t.equal(ro.status, 1, 'a read-only mount does not share with a writer');
  t.match(ro.stderr, `by pid ${d.pid}`);

  // Nothing may change while the idle mount holds it: check -y and mkfs -F are refused.
  await new Promise((r) => setTimeout(r, 6000)); // past the 5 s commit: the mount is idle
  const before = sha(img);
  const ck = runCli(['check', '-y', img]);
  t.equal(ck.status, 8, 'check -y on a mounted volume: exit 8');
  t.match(ck.stderr, `mounted read-write on ${ma} by pid ${d.pid}`, 'check names the holder');
  const ckn = runCli(['check', '-n', img]);
  t.match(ckn.stderr, /warning: .*mounted read-write/, 'check -n runs with a warning');
  const mk = runCli(['mkfs', '-F', '-N', '2', img]);
  t.equal(mk.status, 1, 'mkfs -F on a mounted volume refused');
  t.match(mk.stderr, `by pid ${d.pid}`);
  t.equal(sha(img), before, 'check -y, check -n and mkfs changed no byte');

  t.equal(await d.unmount(), 0, 'first mount unmounts cleanly');
  t.equal(runCli(['inspect', img, 'cat', '/keep']).stdout, 'written through the first mount\n', 'the first mount kept its data');
  assertClean(t, img, 'after the refused second mount');

  // readers share
  const r1 = mountCli(['-o', 'ro', img, ma]);
  t.equal(r1.status, 0, 'read-only mount', { stderr: r1.stderr });
  const r2 = mountCli(['-o', 'ro', img, mb]);
  t.equal(r2.status, 0, 'a second read-only mount shares', { stderr: r2.stderr });
  const w = mountCli([img, path.join(dir)]);
  t.equal(w.status, 1, 'a writer is refused while readers hold it');
  t.match(w.stderr, /mounted read-only on .* by pid \d+/);
  detach(ma); detach(mb);
  await until(() => runCli(['check', '-y', img]).status === 0, WAIT_MS, 'readers gone');
});

t.test('loop devices: one loop device, the file under it, two loop devices over one file', async (t) => {
  if (!requireJudge(t, loopDevicesMissing())) return;
  const dir = tmpDir('excl-loop');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'v.img');
  mkfsOcfs2(img, 128);
  const l0 = attachLoop(img);
  const l1 = attachLoop(img);
  t.teardown(() => { detachLoop(l0); detachLoop(l1); });
  const [ma, mb] = mountDirs(t, 2) as [string, string];
  const d = await startRwDaemon(l0, ma);
  t.teardown(() => d.kill());
  fs.writeFileSync(path.join(ma, 'keep'), 'kept\n');
  for (const [dev, what] of [[l0, 'the same loop device'], [l1, 'a second loop device over the file'], [img, 'the backing file']] as const) {
    const r = mountCli([dev, mb]);
    t.equal(r.status, 1, `${what}: refused`);
    t.match(r.stderr, `mounted read-write on ${ma} by pid ${d.pid}`, `${what}: names mount point and pid`);
  }
  // The kernel's own exclusivity: our writer holds the device with O_EXCL, so any other exclusive opener
  // (mkfs of other tools, a kernel mount) gets EBUSY.
  const excl = spawnSync('python3', ['-c', `import os
try:
  os.open('${l0}', os.O_RDONLY | os.O_EXCL); print('opened')
except OSError as e:
  print(e.strerror)`], { encoding: 'utf8' });
  t.match(excl.stdout, /busy/i, 'an O_EXCL open of the mounted loop device: EBUSY');
  const ck = runCli(['check', '-y', l1]);
  t.equal(ck.status, 8, 'check -y through the other loop device: exit 8');
  t.equal(await d.unmount(), 0);
  t.equal(runCli(['inspect', l1, 'cat', '/keep']).stdout, 'kept\n', 'the first mount kept its data');
  assertClean(t, l1, 'loop devices');
});

/** Start `ocfs2-fuse IMG MNT` in the background; returns the daemon's pid. */
function backgroundMount(dev: string, mnt: string, log: string): number {
  const r = spawnSync('timeout', ['180', process.execPath, CLI, dev, mnt], { encoding: 'utf8', env: { ...process.env, OCFS2_FUSE_LOG: log } });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  const line = ps.split('\n').find((l) => l.includes(CLI) && l.includes(` ${mnt}`));
  if (!line) throw new Error('daemon not found');
  return Number(line.trim().split(/\s+/)[0]);
}

function waitPidGone(pid: number): Promise<void> {
  return until(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, WAIT_MS, `pid ${pid} exits`);
}

t.test('SIGTERM and SIGINT unmount cleanly; a busy mount says so and keeps serving', async (t) => {
  const dir = tmpDir('excl-sig');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'v.img');
  mkfsOcfs2(img, 128);
  const [ma] = mountDirs(t, 1) as [string];

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    // foreground (-f)
    const d = await startRwDaemon(img, ma);
    fs.writeFileSync(path.join(ma, `fg-${sig}`), `just before ${sig}\n`);
    d.proc.kill(sig);
    t.equal(await d.exited, 0, `-f: ${sig} ends the daemon with 0`);
    t.equal(runCli(['inspect', img, 'cat', `/fg-${sig}`]).stdout, `just before ${sig}\n`, `-f ${sig}: the file written just before is on disk`);
    assertClean(t, img, `-f ${sig}`);
    // background (daemonized)
    const pid = backgroundMount(img, ma, path.join(dir, 'bg.log'));
    fs.writeFileSync(path.join(ma, `bg-${sig}`), 'x');
    process.kill(pid, sig);
    await waitPidGone(pid);
    t.equal(runCli(['inspect', img, 'cat', `/bg-${sig}`]).stdout, 'x', `background ${sig}: file on disk`);
    assertClean(t, img, `background ${sig}`);
  }

  // busy: a process holds a file open inside the mount
  const d = await startRwDaemon(img, ma);
  t.teardown(() => d.kill());
  fs.writeFileSync(path.join(ma, 'busy'), 'held open\n');
  const holder = spawn('bash', ['-c', `exec 3<"${path.join(ma, 'busy')}"; cd "${ma}"; exec sleep 600`], { stdio: 'ignore' });
  t.teardown(() => { try { holder.kill('SIGKILL'); } catch { /* gone */ } });
  await new Promise((r) => setTimeout(r, 500));
  d.proc.kill('SIGTERM');
  await until(() => /is busy/.test(d.log()), WAIT_MS, 'busy message');
  t.match(d.log(), new RegExp(`SIGTERM: ${ma} is busy`), 'a busy mount says so');
  t.equal(fs.readFileSync(path.join(ma, 'busy'), 'utf8'), 'held open\n', 'and keeps serving');
  fs.writeFileSync(path.join(ma, 'after'), 'still writable\n');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'SIGTERM once idle: unmounted');
  t.equal(runCli(['inspect', img, 'cat', '/after']).stdout, 'still writable\n');
  assertClean(t, img, 'busy, then SIGTERM');
});

t.test('mkfs over an existing filesystem needs -F', async (t) => {
  const dir = tmpDir('excl-mkfs');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'v.img');
  mkfsOcfs2(img, 64);
  const before = sha(img);
  const r = runCli(['mkfs', '-N', '2', img]);
  t.equal(r.status, 1, 'no -F, no terminal: exit 1');
  t.match(r.stdout, 'Overwriting existing ocfs2 partition.', "mkfs.ocfs2's wording");
  t.equal(sha(img), before, 'no byte changed');
  const tool = spawnSync('timeout', ['120', path.join(path.dirname(CLI), '..', '..', '..', 'tools', 'mkfs.ocfs2'), '-N', '2', img], { encoding: 'utf8' });
  t.equal(tool.status, 1, 'tools/mkfs.ocfs2 too');
  t.equal(sha(img), before);
  const ext = path.join(dir, 'e.img');
  spawnSync('timeout', ['60', 'mkfs.ext4', '-q', '-F', ext, '16M'], { env: SBIN_ENV });
  const eb = sha(ext);
  const re = runCli(['mkfs', '-N', '2', ext]);
  t.equal(re.status, 1, 'an ext4 image (blkid) is not overwritten either');
  t.match(re.stdout, 'Overwriting existing ext4 partition.');
  t.equal(sha(ext), eb);
  t.equal(runCli(['mkfs', '-q', '-F', '-N', '2', img]).status, 0, '-F formats');
});

t.test('a failed mount leaves the volume byte-identical; bad options and commands are named', async (t) => {
  const dir = tmpDir('excl-fail');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const img = path.join(dir, 'v.img');
  mkfsOcfs2(img, 64);
  const [ma] = mountDirs(t, 1) as [string];
  const before = sha(img);
  const bad = mountCli(['-o', 'bogusopt', img, ma]);
  t.equal(bad.status, 1);
  t.match(bad.stderr, 'unknown mount option "bogusopt"', 'the rejected option is named');
  t.equal(sha(img), before, 'bad -o: byte-identical');
  // libfuse rejects this one after the volume was opened (slot taken, journal dirty): all undone
  const late = mountCli(['-o', 'uid=notanumber', img, ma]);
  t.equal(late.status, 1, 'libfuse refuses uid=notanumber');
  t.match(late.stderr, /uid=notanumber/, 'the options libfuse got are named');
  // The volume was opened read-write (dirty journals replayed, slot taken, journal marked dirty): undone.
  assertClean(t, img, 'failure after open');
  const cmd = runCli(['chek', img]);
  t.equal(cmd.status, 1);
  t.match(cmd.stderr, /unknown command 'chek'[\s\S]*Did you mean check\?/, 'unknown command, closest match');
  const opt = runCli(['check', '--yes', img]);
  t.equal(opt.status, 1);
  t.match(opt.stderr, /unknown option '--yes'/, 'unknown option');
  const ro = runCli(['--frobnicate', img, ma]);
  t.equal(ro.status, 1);
  t.match(ro.stderr, /unknown option '--frobnicate'/);
});

t.test('cluster volume: configuration, heartbeat for the mount\'s life, other nodes', async (t) => {
  if (!requireJudge(t, loopDevicesMissing())) return;
  const dir = tmpDir('excl-clu');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { image } = makeO2cbImage(dir, { cluster: 'testclu', slots: 4, sizeMiB: 128 });
  const nodes = await makeNodes(2);
  writeCluster(dir, nodes, { threshold: 31, idle: 30000, keepalive: 2000, reconnect: 2000 });
  const conf = ['--cluster-conf', path.join(dir, 'cluster.conf'), '--o2cb-config', path.join(dir, 'o2cb'), '--runtime-dir', dir];
  const l0 = attachLoop(image);
  const l1 = attachLoop(image);
  t.teardown(() => { detachLoop(l0); detachLoop(l1); });
  const [ma, mb] = mountDirs(t, 2) as [string, string];

  const noconf = mountCli(['--cluster-conf', path.join(dir, 'none.conf'), l0, ma]);
  t.equal(noconf.status, 1, 'no cluster configuration: read-write refused');
  t.match(noconf.stderr, /cluster-mode volume \(cluster "testclu"\).*-o ro/, 'the message says how to mount it');
  const ro = mountCli(['-o', 'ro', '--cluster-conf', path.join(dir, 'none.conf'), l0, ma]);
  t.equal(ro.status, 0, '-o ro still works', { stderr: ro.stderr });
  detach(ma);
  await until(() => runCli(['check', '-n', l0]).stderr.indexOf('mounted read-only') < 0, WAIT_MS, 'ro mount gone');

  const d = await startRwDaemon(l0, ma, [...conf, '--node', 'node0'], 180000);
  t.teardown(() => d.kill());
  fs.writeFileSync(path.join(ma, 'keep'), 'node0 data\n');
  const hb = runCli(['inspect', l1, 'hb']).stdout;
  t.match(hb, /^\s+0:\s+0 \S+ (?!0{16})[0-9a-f]{16}/m, 'node 0 heartbeats while mounted');
  for (const node of ['node0', 'node1']) {
    const r = mountCli([...conf, '--node', node, l1, mb]);
    t.equal(r.status, 1, `second mount as ${node} through the other loop device: refused`);
    t.match(r.stderr, `mounted read-write on ${ma} by pid ${d.pid}`);
  }
  t.equal(await d.unmount(), 0);
  t.equal(runCli(['inspect', l1, 'cat', '/keep']).stdout, 'node0 data\n', 'the first mount kept its data');
  t.match(runCli(['inspect', l1, 'hb']).stdout, /^\s+0:\s+0 \S+ 0{16}/m, 'heartbeat stopped with generation 0');
  assertClean(t, l1, 'cluster unmount');

  // Another node (a `cluster node` process, heartbeat only) is live: mount and check -y refuse.
  const n1: NodeProc = spawnNode({ dir, node: 'node1', staticHeartbeat: false, extra: ['--device', l1, '--runtime-dir', dir] });
  t.teardown(() => n1.stop());
  await n1.ready();
  await n1.waitFor(/Heartbeat started/, WAIT_MS);
  const before = sha(image);
  const r = mountCli([...conf, '--node', 'node0', l0, ma]);
  t.equal(r.status, 1, 'mount refused while node 1 heartbeats');
  t.match(r.stderr, /node\(s\) 1 are heartbeating/);
  const ck = runCli(['check', '-y', l0]);
  t.equal(ck.status, 8, 'check -y refused while node 1 heartbeats');
  t.match(ck.stderr, /node\(s\) 1 heartbeat/);
  await n1.stop();
  t.same(slotmapRows(l0), [], 'the refused mount took no slot');
  t.match(runCli(['inspect', l0, 'hb']).stdout, /^\s+0:\s+0 \S+ 0{16}/m, 'the refused mount stopped its heartbeat (generation 0)');
  t.not(before, '', 'volume hashed');
  assertClean(t, l0, 'after the refused mount');

  // SIGTERM on a cluster mount: clean, heartbeat stopped.
  const d2 = await startRwDaemon(l0, ma, [...conf, '--node', 'node0'], 180000);
  fs.writeFileSync(path.join(ma, 'sig'), 'y');
  d2.proc.kill('SIGTERM');
  t.equal(await d2.exited, 0);
  t.match(runCli(['inspect', l1, 'hb']).stdout, /^\s+0:\s+0 \S+ 0{16}/m, 'SIGTERM: heartbeat stopped with generation 0');
  assertClean(t, l1, 'cluster SIGTERM');
});
