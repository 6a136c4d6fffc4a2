/**
 * Until copy on write of refcounted clusters exists (issue 15, part 2), an
 * inode that shares clusters through a refcount tree (OCFS2_HAS_REFCOUNT_FL)
 * is never written, truncated, fallocated, deleted or given new xattrs: each
 * is refused with EOPNOTSUPP and leaves the file as it was.  The flag is set
 * on a file of ours here (what a reflink made by the kernel looks like to
 * these operations); the same operations on a file without it succeed.
 */
import t from 'tap';
import * as path from 'node:path';
import { tmpDir, sh } from './lib/mount';
import { mkfsOcfs2 } from './lib/rwdaemon';
import { Ocfs2Fs, openFsVolume } from '../src/libocfs2/fs';
import { patchInode } from '../src/libocfs2/fs/inode';
import { OCFS2_HAS_REFCOUNT_FL, S_IFREG } from '../src/libocfs2/constants';

const work = tmpDir('refguard');
t.teardown(() => { sh(`rm -rf ${work}`); });

t.test('changes to a refcounted inode are refused and change nothing', async (t) => {
  const img = path.join(work, 'g.img');
  mkfsOcfs2(img, 128, '-b 4096 -C 4096 --fs-feature-level=max-features');
  const fv = await openFsVolume(img, {});
  const fs = new Ocfs2Fs(fv);
  try {
    const root = fs.vol.rootBlkno;
    const owner = { uid: 0, gid: 0 };
    const data = Buffer.alloc(20000, 7);
    const shared = await fs.mknod(root, Buffer.from('shared'), S_IFREG | 0o644, 0, owner);
    const plain = await fs.mknod(root, Buffer.from('plain'), S_IFREG | 0o644, 0, owner);
    for (const ino of [shared, plain]) await fs.write(ino, 0, data);
    await fs.op((tx) => patchInode(fs.vol, tx, shared, (h) => { h.i_dyn_features |= OCFS2_HAS_REFCOUNT_FL; }));
    const refused = { code: 'EOPNOTSUPP' };
    await t.rejects(fs.write(shared, 100, Buffer.from('x')), refused, 'write');
    await t.rejects(fs.setattr(shared, { size: 10 }), refused, 'truncate');
    await t.rejects(fs.fallocate(shared, 0, 0, 100000), refused, 'fallocate');
    await t.rejects(fs.setxattr(shared, Buffer.from('user.a'), Buffer.from('b'), 0), refused, 'setxattr');
    await t.rejects(fs.unlink(root, Buffer.from('shared'), { dir: false }), refused, 'unlink of the last link');
    t.ok((await fs.read(shared, 0, 30000)).equals(data), 'the content is unchanged');
    t.ok(await fs.lookup(root, Buffer.from('shared')), 'the name is still there');
    // The same operations on a file without the flag work.
    await fs.write(plain, 100, Buffer.from('x'));
    await fs.setattr(plain, { size: 10 });
    await fs.unlink(root, Buffer.from('plain'), { dir: false });
    t.notOk(await fs.lookup(root, Buffer.from('plain')), 'an ordinary file is deleted');
  } finally {
    await fs.flush();
    await fv.close();
  }
});
