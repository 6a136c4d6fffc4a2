/**
 * fstab and install: `make install PREFIX=DIR` puts `ocfs2-fuse` in DIR/bin;
 * an fstab line of the libfuse form (`DEVICE MNT fuse.ocfs2-fuse OPTS 0 0`)
 * is mounted and unmounted by mount(8)/umount(8) through mount.fuse3, with
 * the generic options (defaults, noauto, _netdev, nofail, rw, ro).  The
 * fstab is a temporary file (mount -T) and the install directory is bound
 * over /usr/local/bin inside a private mount namespace (unshare -m): mount(8)
 * runs helpers with a fixed PATH, and nothing outside the test changes.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { refMkfs, run, sparseImage } from './mkfs-compare';
import { tmpDir } from './lib/mount';
import { REPO_ROOT } from './lib/refimages';

const root = process.getuid?.() === 0;
const dir = tmpDir('fstab');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function install(): { status: number; stderr: string } {
  const r = spawnSync('make', ['-s', '-C', REPO_ROOT, 'install', `PREFIX=${dir}`], { encoding: 'utf8' });
  return { status: r.status ?? -1, stderr: r.stderr };
}

/** Run a bash script in a private mount namespace with DIR/bin over /usr/local/bin. */
function inNamespace(script: string): { status: number; out: string } {
  if (!fs.existsSync(path.join(dir, 'bin', 'ocfs2-fuse'))) install();
  const r = spawnSync('timeout', ['180', 'unshare', '--mount', '--propagation', 'private', 'bash', '-euc',
    `mount --bind ${dir}/bin /usr/local/bin\n${script}`], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** After umount the daemon still checkpoints its journal and releases its slot: wait for a clean volume. */
async function waitClean(img: string): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = run('fsck.ocfs2', ['-fn', img]);
    if (r.status === 0 && !/Skipping journal replay/.test(r.stdout + r.stderr)) return true;
    await new Promise((res) => setTimeout(res, 500));
  }
  return false;
}

t.test('make install puts ocfs2-fuse on the PATH', { skip: !root && 'needs root' }, async (t) => {
  const r = install();
  t.equal(r.status, 0, r.stderr);
  const bin = path.join(dir, 'bin', 'ocfs2-fuse');
  t.ok(fs.existsSync(bin));
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  t.equal(v.status, 0, v.stderr);
  t.match(v.stdout, /^\d+\.\d+\.\d+/);
});

t.test('an fstab line mounted and unmounted through mount(8)', { skip: !root && 'needs root' }, async (t) => {
  const img = path.join(dir, 'vol.img');
  sparseImage(img, 200 * 2 ** 20);
  refMkfs(img, ['-M', 'local', '-N', '2', '-L', 'fstabvol']);
  const mnt = path.join(dir, 'mnt');
  const mntRo = path.join(dir, 'mnt-ro');
  const mntAuto = path.join(dir, 'mnt-auto');
  for (const m of [mnt, mntRo, mntAuto]) fs.mkdirSync(m);
  const fstab = path.join(dir, 'fstab');
  fs.writeFileSync(fstab, [
    `${img} ${mnt} fuse.ocfs2-fuse defaults,_netdev,nofail,noauto,rw 0 0`,
    `${img} ${mntRo} fuse.ocfs2-fuse ro,noauto,nofail 0 0`,
    '',
  ].join('\n'));

  const rw = inNamespace(`
    mount -T ${fstab} ${mnt}
    grep -q " ${mnt} fuse" /proc/mounts && echo MOUNTED
    mkdir ${mnt}/dir && echo hello > ${mnt}/dir/file && sync
    cat ${mnt}/dir/file
    umount ${mnt}
    grep -q " ${mnt} " /proc/mounts || echo UNMOUNTED
  `);
  t.equal(rw.status, 0, rw.out);
  t.match(rw.out, /MOUNTED\nhello\nUNMOUNTED/);
  t.ok(await waitClean(img), 'fsck.ocfs2 clean after umount');
  t.match(run('debugfs.ocfs2', ['-R', 'cat /dir/file', img]).stdout, /^hello\n/, 'the write reached the volume');

  const ro = inNamespace(`
    mount -T ${fstab} ${mntRo}
    cat ${mntRo}/dir/file
    if touch ${mntRo}/x 2>/dev/null; then echo WROTE; else echo READONLY; fi
    umount ${mntRo}
  `);
  t.equal(ro.status, 0, ro.out);
  t.match(ro.out, /hello\nREADONLY/);

  // mount -a: noauto lines stay unmounted, the auto line is mounted.
  fs.appendFileSync(fstab, `${img} ${mntAuto} fuse.ocfs2-fuse defaults,_netdev,nofail 0 0\n`);
  await waitClean(img);
  const all = inNamespace(`
    mount -a -T ${fstab}
    grep -c " ${dir}/mnt" /proc/mounts || true
    grep -q " ${mntAuto} fuse" /proc/mounts && echo AUTO-MOUNTED
    ls ${mntAuto}/dir
    umount ${mntAuto}
  `);
  t.equal(all.status, 0, all.out);
  t.match(all.out, /^1\nAUTO-MOUNTED\nfile\n/m, 'only the auto line');
  t.ok(await waitClean(img));
});

t.test('generic fstab options are not handed to libfuse', { skip: !root && 'needs root' }, async (t) => {
  // As a helper would be run by hand: the fstab-only options must be accepted.
  const img = path.join(dir, 'direct.img');
  sparseImage(img, 200 * 2 ** 20);
  refMkfs(img, ['-M', 'local']);
  const mnt = path.join(dir, 'direct');
  fs.mkdirSync(mnt);
  const r = inNamespace(`
    ocfs2-fuse ${img} ${mnt} -o defaults,noauto,_netdev,nofail,x-systemd.automount,comment=x,rw,dev,suid
    ls ${mnt}
    umount ${mnt}
  `);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /lost\+found/);
});
