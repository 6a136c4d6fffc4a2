/**
 * The POSIX operations of a read-write OCFS2 volume (issue 4), by inode
 * block number; the FUSE layer (src/fuse/rwops.ts) resolves paths.
 *
 *   const fs = new Ocfs2Fs(rv);      // rv: { vol, slot, tm, alloc, extentTree(ino) }
 *   await fs.mknod(dir, name, mode, rdev, { uid, gid }) -> ino   (regular, fifo, socket, chr/blk)
 *   await fs.mkdir(dir, name, mode, owner) -> ino;  fs.symlink(dir, name, target, owner) -> ino
 *   await fs.link(ino, dir, name);  fs.unlink(dir, name, { dir, isOpen }) -> ino;  fs.releaseOrphan(ino)
 *   await fs.rename(sdir, sname, ddir, dname, { isOpen })
 *   await fs.write(ino, pos, data) -> n;  fs.read(ino, pos, len);  fs.fallocate(ino, mode, off, len)
 *   await fs.setattr(ino, { mode, uid, gid, atime, mtime, size })
 *   await fs.setxattr(ino, fullName, value, flags);  fs.removexattr(ino, fullName)
 *   await fs.flush();  fs.statfs()
 *   fs.lookup(dir, name) -> EntryLoc | undefined
 *
 * openFsVolume(dev) opens a volume for these operations (the read-write
 * mount of src/libocfs2/rwmount.ts when available).
 */
export { Ocfs2Fs, orphanName, type Owner, type SetAttr } from './fs';
export type { EntryLoc } from './dirops';
export { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from './data';
export { XATTR_CREATE, XATTR_REPLACE } from './xattrops';
export type { RwVolumeLike, FsAllocators, FsExtentTree, ClusterRun, SubAlloc, LeafRec } from './types';
export { openFsVolume, type FsVolume } from './open';
