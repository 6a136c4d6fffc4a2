/**
 * Runs test/fixtures/fuse-server.ts (an OCFS2 image served through
 * src/fuse/binding.ts, with test hooks that change the volume behind the
 * kernel's back) in a child process, talks to it over IPC, and always
 * cleans up (fusermount3 -u -z, SIGKILL if needed).
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MountOptions } from '../../src/fuse/binding';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'fuse-server.ts');

export interface FuseServer {
  child: ChildProcess;
  mnt: string;
  stderr: () => string;
  /** One request/response over IPC; rejects with the server's error. */
  request<T>(msg: object): Promise<T>;
  unmounted: Promise<{ external: boolean }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  cleanup(): Promise<void>;
}

/** Forks the server for `img` on a fresh mountpoint and waits until it is mounted. */
export async function startFuseServer(img: string, opts: MountOptions = {}): Promise<FuseServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-server-'));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  // Only the TypeScript loader of the parent (tap) is needed in the child.
  const execArgv = process.execArgv.filter((a) => a.includes('typescript') || a.includes('tsimp') || a.includes('loader') || a.includes('import'));
  const child = fork(FIXTURE, [img, mnt, JSON.stringify(opts)], {
    execArgv: execArgv.length ? execArgv : process.execArgv,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout?.on('data', (d: Buffer) => { err += d.toString(); });
  const waiters: Array<(m: unknown) => void> = [];
  let onUnmounted: (e: { external: boolean }) => void = () => {};
  const unmounted = new Promise<{ external: boolean }>((r) => { onUnmounted = r; });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => { onReady = r; });
  child.on('message', (m: { event?: string; external?: boolean }) => {
    if (m.event === 'ready') onReady();
    else if (m.event === 'unmounted') onUnmounted({ external: !!m.external });
    else waiters.shift()?.(m);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const server: FuseServer = {
    child, mnt, unmounted, exited,
    stderr: () => err,
    request<T>(msg: object): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no IPC reply to ${JSON.stringify(msg)}`)), 30_000);
        waiters.push((m) => {
          clearTimeout(timer);
          const e = (m as { error?: string }).error;
          if (e) reject(new Error(e)); else resolve(m as T);
        });
        child.send(msg);
      });
    },
    async cleanup() {
      spawnSync('timeout', ['10', 'fusermount3', '-u', '-z', mnt], { stdio: 'ignore' });
      const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
      if (!gone) { child.kill('SIGKILL'); await exited; }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const failed = exited.then((e) => { throw new Error(`fuse-server exited (${e.code ?? e.signal}) before mounting: ${err}`); });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`fuse-server did not mount in 60 s: ${err}`)), 60_000).unref());
  try {
    await Promise.race([ready, failed, timeout]);
  } catch (e) {
    await server.cleanup();
    throw e;
  }
  failed.catch(() => {});
  return server;
}
