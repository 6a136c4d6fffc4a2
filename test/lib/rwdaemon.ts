/**
 * A read-write mount daemon of ours in the foreground, as a child process
 * the test controls (SIGKILL for crash tests, fusermount3 -u for clean
 * unmounts), plus the image and fsck helpers the end-to-end write-path
 * tests share.  Needs the CLI built (npx tsc -p .).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { CLI, sh } from './mount';

export const SBIN_ENV = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };

export interface RwDaemon {
  proc: ChildProcess;
  pid: number;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
  /** Resolves with the exit code (or the signal name) once the process has gone. */
  exited: Promise<number | string>;
  /** SIGKILL, then detach the dead mount (fusermount3 -u -z). */
  kill(): Promise<void>;
  /** Clean unmount: fusermount3 -u, then wait until the daemon has checkpointed and exited. */
  unmount(timeoutMs?: number): Promise<number | string>;
}

/** Start `ocfs2-fuse -f IMG MNT [extra]` and wait until it reports the mount ready. */
export async function startRwDaemon(img: string, mnt: string, extra: string[] = [], timeoutMs = 60000): Promise<RwDaemon> {
  // RW_DAEMON_ARGS: extra daemon arguments for debugging a test (e.g. -d: libfuse logs every request).
  const envArgs = (process.env.RW_DAEMON_ARGS ?? '').split(' ').filter((a) => a);
  const proc = spawn(process.execPath, [CLI, '-f', ...envArgs, ...extra, img, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  proc.stderr!.on('data', (d: Buffer) => { text += d.toString(); if (text.length > 8 << 20) text = text.slice(-(4 << 20)); });
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const check = (): void => { if (/mounted .* \(read-write/.test(text)) { clearTimeout(timer); resolve(true); } };
    proc.stderr!.on('data', check);
    void exited.then(() => { clearTimeout(timer); resolve(/mounted .* \(read-write/.test(text)); });
  });
  if (!ready) {
    proc.kill('SIGKILL');
    detach(mnt);
    throw new Error(`read-write mount of ${img} failed:\n${text}`);
  }
  return {
    proc, pid: proc.pid!, exited, log: () => text,
    async kill(): Promise<void> {
      proc.kill('SIGKILL');
      await exited;
      detach(mnt);
    },
    async unmount(ms = 120000): Promise<number | string> {
      // fusermount3 -u fails with EBUSY while something still has a file open: retry a little.
      let why = '';
      for (let i = 0; i < 20; i++) {
        const u = spawnSync('timeout', ['20', 'fusermount3', '-u', mnt], { encoding: 'utf8' });
        if (u.status === 0) { why = ''; break; }
        why = `fusermount3 -u: ${u.status} ${u.stderr.trim()}`;
        await new Promise((r) => setTimeout(r, 500));
      }
      if (why) text += `\n[test] ${why}\n`;
      const timer = new Promise<string>((r) => setTimeout(() => r('timeout'), ms));
      const r = await Promise.race([exited, timer]);
      if (r === 'timeout') {
        // What the stuck daemon holds: is the mount still there, is /dev/fuse still open, where are its threads.
        const diag = spawnSync('bash', ['-c', `grep -F ' ${mnt} ' /proc/mounts; ls -l /proc/${proc.pid}/fd | grep -c fuse;`
          + ` for t in /proc/${proc.pid}/task/*; do echo "$(cat $t/comm) $(cat $t/wchan 2>/dev/null) $(awk '{print $3}' $t/stat)"; done | sort | uniq -c`], { encoding: 'utf8' });
        text += `\n[test] daemon still running ${ms} ms after unmount: SIGKILL; mounts/fuse fds/threads:\n${diag.stdout}\n`;
        proc.kill('SIGKILL');
        detach(mnt);
      }
      return r;
    },
  };
}

export function detach(mnt: string): void {
  spawnSync('timeout', ['20', 'fusermount3', '-u', '-z', mnt], { stdio: 'ignore' });
}

export function mkfsOcfs2(img: string, sizeMb: number, extra = '-b 4096 -C 4096'): void {
  sh(`rm -f ${img} && truncate -s ${sizeMb}M ${img} && PATH=$PATH:/sbin:/usr/sbin mkfs.ocfs2 -q -F -M local -N 2 ${extra} ${img} >/dev/null`, 120);
}

/** fsck.ocfs2 -fn; `clean` is exit 0 with no problem codes and no skipped replay. */
export function fsckOcfs2(img: string): { status: number; out: string; clean: boolean } {
  const r = spawnSync('timeout', ['300', 'fsck.ocfs2', '-fn', img], { env: SBIN_ENV, encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  const status = r.status ?? -1;
  return { status, out, clean: status === 0 && !/Skipping journal replay|\[[A-Z_]+\]/.test(out) };
}
