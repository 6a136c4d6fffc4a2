/**
 * Typed errors for the whole project, and the single place where they are
 * mapped to errno values for FUSE and to exit codes for tools.
 */
import { constants as osc } from 'node:os';

const E = osc.errno;

/** Base: every error we raise deliberately carries an errno. */
export class Ocfs2Error extends Error {
  constructor(message: string, readonly errno: number = E.EIO) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * On-disk corruption: a block failed a check.  Always names the block and the
 * check, e.g. "block 1234: dinode signature is 'XXXX', expected 'INODE01'".
 */
export class Ocfs2CorruptError extends Ocfs2Error {
  constructor(readonly blkno: number, readonly check: string, detail?: string) {
    super(`block ${blkno}: ${check}${detail ? ` (${detail})` : ''}`, E.EIO);
  }
}

/** A volume that is not OCFS2 at all, or uses features we cannot handle. */
export class Ocfs2FormatError extends Ocfs2Error {
  constructor(message: string) { super(message, E.EINVAL); }
}

export class Ocfs2UnsupportedError extends Ocfs2Error {
  constructor(message: string) { super(message, E.EOPNOTSUPP); }
}

/** A POSIX-level error with an explicit errno (ENOENT, ENOTDIR, ...). */
export class PosixError extends Ocfs2Error {
  constructor(readonly code: keyof typeof E, message?: string) {
    super(message ?? code, E[code]);
  }
}

/**
 * A volume held by another opener on this host (src/libocfs2/claim.ts) or by
 * another node (live heartbeat): `holders` says who, when known.
 */
export class VolumeBusyError extends Ocfs2Error {
  constructor(message: string, readonly holders: readonly { pid: number; tool: string; mode: 'write' | 'read'; device: string; mountpoint?: string }[] = []) {
    super(message, E.EBUSY);
  }
}

/** Map any thrown value to a positive errno. */
export function errnoOf(err: unknown): number {
  if (err instanceof Ocfs2Error) return err.errno;
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code in E) return E[code as keyof typeof E];
  }
  return E.EIO;
}
