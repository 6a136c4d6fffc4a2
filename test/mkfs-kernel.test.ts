/**
 * The Linux kernel mounts what our mkfs makes.  One boot of the qemu harness
 * (../shared/kernel) with two volumes from our mkfs: /dev/vda local mode
 * (max-features: metaecc, quotas, indexed dirs) and /dev/vdb cluster mode
 * (o2cb, one-node cluster).  The guest mounts each read-write, writes a small
 * tree (dirs, a file copied from the host, a symlink, many entries),
 * unmounts; on the host fsck.ocfs2 -fn stays clean and our read-only mount
 * reads the tree back byte for byte.  Runs when the harness can run.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { fsckClean, run, sparseImage, tmp } from './mkfs-compare';
import { CLI, mountRo } from './lib/mount';
import { KERNEL_HARNESS_DIR, kernelHarnessMissing, requireJudge } from './lib/judges';
import { REPO_ROOT } from './lib/refimages';

const runLocal = path.join(KERNEL_HARNESS_DIR, 'run-local.sh');

t.test('the kernel mounts our volumes, writes a tree, fsck stays clean, we read it back', async (t) => {
    if (!requireJudge(t, kernelHarnessMissing())) return;
    const dir = tmp('kernel');
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const local = path.join(dir, 'local.img');
    const cluster = path.join(dir, 'cluster.img');
    sparseImage(local, 512 * 2 ** 20);
    sparseImage(cluster, 512 * 2 ** 20);
    let r = run(process.execPath, [CLI, 'mkfs', '-q', '-F', '-M', 'local', '-N', '2', '-b', '4096', '-C', '4096',
      '--fs-feature-level=max-features', '-L', 'klocal', local]);
    t.equal(r.status, 0, r.stderr);
    r = run(process.execPath, [CLI, 'mkfs', '-q', '-F', '-N', '4', '-b', '2048', '-C', '32768',
      '--cluster-stack=o2cb', '--cluster-name=kt', '-L', 'kclust', cluster]);
    t.equal(r.status, 0, r.stderr);

    const payload = crypto.randomBytes(300 * 1024 + 123);
    const payloadFile = path.join(dir, 'payload.bin');
    fs.writeFileSync(payloadFile, payload);
    const script = path.join(dir, 'guest.sh');
    fs.writeFileSync(script, [
      'set -e',
      'fill() {',
      '  m=$1',
      '  mkdir -p $m/top/sub/deeper',
      '  cp payload.bin $m/top/sub/payload.bin',
      '  echo "hello from the kernel" > $m/top/hello.txt',
      '  ln -s sub/payload.bin $m/top/link',
      '  i=0; while [ $i -lt 60 ]; do echo $i > $m/top/sub/deeper/f$i; i=$((i+1)); done',
      '  sync',
      '}',
      'mkdir -p /mnt/a /mnt/b',
      'mount -t ocfs2 /dev/vda /mnt/a',
      'fill /mnt/a',
      'umount /mnt/a',
      'echo LOCAL-OK',
      'kh_o2cb_single /dev/vdb',
      'mount.ocfs2 /dev/vdb /mnt/b',
      'fill /mnt/b',
      'umount /mnt/b',
      'echo CLUSTER-OK',
    ].join('\n'));
    const boot = run(runLocal, ['-t', '240', '-i', payloadFile, '-d', cluster, local, script], undefined, 300);
    t.equal(boot.status, 0, `guest script (${boot.stdout.slice(-500)} ${boot.stderr.slice(-500)})`);
    t.match(boot.stdout, /LOCAL-OK/);
    t.match(boot.stdout, /CLUSTER-OK/);

    for (const img of [local, cluster]) {
      const f = fsckClean(img);
      t.ok(f.ok, `${path.basename(img)}: fsck.ocfs2 -fn clean after the kernel wrote`, { out: f.ok ? undefined : f.out });
      const m = mountRo(img);
      try {
        const top = path.join(m.mountpoint, 'top');
        t.same(fs.readdirSync(top).sort(), ['hello.txt', 'link', 'sub']);
        t.equal(fs.readFileSync(path.join(top, 'hello.txt'), 'utf8'), 'hello from the kernel\n');
        t.ok(fs.readFileSync(path.join(top, 'sub', 'payload.bin')).equals(payload), 'payload bytes');
        t.equal(fs.readlinkSync(path.join(top, 'link')), 'sub/payload.bin');
        const deeper = fs.readdirSync(path.join(top, 'sub', 'deeper'));
        t.equal(deeper.length, 60);
        t.equal(fs.readFileSync(path.join(top, 'sub', 'deeper', 'f42'), 'utf8'), '42\n');
      } finally {
        m.unmount();
      }
    }
  });
