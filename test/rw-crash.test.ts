/**
 * Crash safety through the real mount: a workload runs through a FUSE
 * mount of ours (foreground daemon, spawned here) — creates, writes,
 * appends, renames, unlinks, truncates, xattrs, mkdirs — and the daemon is
 * SIGKILLed at a random moment.  Some operations are followed by fsync of
 * the file (and of its directory); only once fsync has returned is the file
 * recorded with the md5 of its content (and its xattr), or recorded as gone
 * after an unlink.  After each kill: fusermount3 -u -z the dead mount, mount
 * again (journal replay), every recorded file must have exactly its
 * recorded content and xattr and every recorded removal must hold, clean
 * unmount, fsck.ocfs2 -fn clean.  The same image carries on to the next
 * round, so later rounds run on an aged volume (deep extent trees, grown
 * directories, freed and reused space).  Needs the CLI built (npx tsc -p .).
 */
import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpDir, sh } from './lib/mount';
import { startRwDaemon, mkfsOcfs2, fsckOcfs2, type RwDaemon } from './lib/rwdaemon';

const execFileP = promisify(execFile);
const ROUNDS = Number(process.env.RW_CRASH_ROUNDS ?? 22);
const SEED = Number(process.env.RW_CRASH_SEED ?? (Date.now() % 1000000));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

/** What must hold after replay: content md5 (+ one xattr) of a file, or that the path does not exist. */
type Expect = { md5: string; size: number; xattr?: string } | 'absent';

/** The test's model of the live files (what we wrote), for picking targets and hashing after fsync. */
interface Live { data: Buffer; xattr?: string }

const work = tmpDir('rwcrash');
const img = path.join(work, 'vol.img');
const mnt = path.join(work, 'mnt');
fs.mkdirSync(mnt);
let daemon: RwDaemon | undefined;
t.teardown(async () => {
  if (daemon) await daemon.kill();
  sh(`rm -rf ${work}`);
});

t.test(`SIGKILL of the daemon at ${ROUNDS} random points; replay keeps every fsync'd file (seed ${SEED})`, async (t) => {
  mkfsOcfs2(img, 384);
  const r = rng(SEED);
  const expect = new Map<string, Expect>();
  const live = new Map<string, Live>();
  const dirs = ['d0', 'd1', 'd2'];
  let serial = 0;
  let kills = 0; let killedBySignal = 0; let fsyncs = 0; let ops = 0; let checked = 0;
  const killedDuring = new Map<string, number>();

  // Make the directories once (fsync'd), so the workload always has somewhere to go.
  daemon = await startRwDaemon(img, mnt);
  for (const d of dirs) fs.mkdirSync(path.join(mnt, d));
  await syncPath(path.join(mnt, 'd0'));
  t.equal(await daemon.unmount(), 0, 'first clean unmount');

  async function syncPath(p: string): Promise<void> {
    const fh = await fs.promises.open(p, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }
  async function fsyncFile(rel: string): Promise<void> {
    const fh = await fs.promises.open(path.join(mnt, rel), 'r+');
    try { await fh.sync(); } finally { await fh.close(); }
    await syncPath(path.join(mnt, path.dirname(rel)));
  }
  const randBytes = (n: number): Buffer => crypto.randomBytes(n);
  const pickSize = (): number => {
    const x = r();
    if (x < 0.25) return Math.floor(r() * 200); // inline data
    if (x < 0.9) return Math.floor(r() * 200000);
    return 1000000 + Math.floor(r() * 2000000); // several extents, needs the local alloc / bitmap
  };
  const pickLive = (): string | undefined => {
    if (live.size === 0) return undefined;
    const keys = [...live.keys()];
    return keys[Math.floor(r() * keys.length)];
  };

  /** One operation; returns the paths it touched (their expectation is dropped before it starts). */
  async function oneOp(): Promise<void> {
    let x = r();
    if (live.size > 120) x = 0.8; // keep the volume from filling up: unlink
    const fsync = r() < 0.45;
    let touched: string[] = [];
    let after: Array<[string, 'file' | 'gone']> = [];
    const begin = (...p: string[]): void => { touched = p; for (const q of p) expect.delete(q); };
    if (x < 0.3 || live.size < 5) {
      const rel = `${dirs[Math.floor(r() * dirs.length)]}/f${serial++}`;
      const data = randBytes(pickSize());
      begin(rel);
      live.set(rel, { data });
      await fs.promises.writeFile(path.join(mnt, rel), data);
      after = [[rel, 'file']];
    } else if (x < 0.45) {
      const rel = pickLive()!; const l = live.get(rel)!;
      const more = randBytes(Math.floor(r() * 100000));
      begin(rel);
      l.data = Buffer.concat([l.data, more]);
      await fs.promises.appendFile(path.join(mnt, rel), more);
      after = [[rel, 'file']];
    } else if (x < 0.55) {
      const rel = pickLive()!; const l = live.get(rel)!;
      // Overwrite in the middle (maybe past EOF: a hole in between).
      const off = Math.floor(r() * (l.data.length + 50000));
      const chunk = randBytes(1 + Math.floor(r() * 70000));
      begin(rel);
      const nd = Buffer.alloc(Math.max(l.data.length, off + chunk.length));
      l.data.copy(nd); chunk.copy(nd, off); l.data = nd;
      const fh = await fs.promises.open(path.join(mnt, rel), 'r+');
      try { await fh.write(chunk, 0, chunk.length, off); } finally { await fh.close(); }
      after = [[rel, 'file']];
    } else if (x < 0.65) {
      const rel = pickLive()!; const l = live.get(rel)!;
      const n = r() < 0.7 ? Math.floor(r() * l.data.length) : l.data.length + Math.floor(r() * 3000000);
      begin(rel);
      const nd = Buffer.alloc(n); l.data.copy(nd, 0, 0, Math.min(n, l.data.length)); l.data = nd;
      await fs.promises.truncate(path.join(mnt, rel), n);
      after = [[rel, 'file']];
    } else if (x < 0.77) {
      const from = pickLive()!;
      // Rename within or across directories, sometimes over an existing file.
      const over = r() < 0.3 ? pickLive() : undefined;
      const to = over && over !== from ? over : `${dirs[Math.floor(r() * dirs.length)]}/f${serial++}`;
      begin(from, to);
      const l = live.get(from)!;
      live.delete(from); live.set(to, l);
      await fs.promises.rename(path.join(mnt, from), path.join(mnt, to));
      after = [[to, 'file'], [from, 'gone']];
    } else if (x < 0.87 || live.size > 120) {
      const rel = pickLive()!;
      begin(rel);
      live.delete(rel);
      await fs.promises.unlink(path.join(mnt, rel));
      after = [[rel, 'gone']];
    } else {
      const rel = pickLive()!; const l = live.get(rel)!;
      const v = r() < 0.8 ? `v${serial++}` : `${'x'.repeat(300 + Math.floor(r() * 3000))}${serial++}`;
      begin(rel);
      l.xattr = v;
      await execFileP('setfattr', ['-n', 'user.crash', '-v', v, path.join(mnt, rel)]);
      after = [[rel, 'file']];
    }
    ops++;
    if (!fsync) return;
    for (const [rel, kind] of after) {
      if (kind === 'file') await fsyncFile(rel);
      else await syncPath(path.join(mnt, path.dirname(rel)));
    }
    // fsync returned: now (and only now) these states must survive a crash.
    for (const [rel, kind] of after) {
      if (!touched.includes(rel)) continue;
      if (kind === 'gone') { if (!live.has(rel)) expect.set(rel, 'absent'); continue; }
      const l = live.get(rel)!;
      expect.set(rel, { md5: md5(l.data), size: l.data.length, ...(l.xattr !== undefined ? { xattr: l.xattr } : {}) });
    }
    fsyncs++;
  }

  for (let round = 0; round < ROUNDS; round++) {
    daemon = await startRwDaemon(img, mnt);
    const d = daemon;
    // Kill point: a random moment 0.05 .. 2.5 s into the workload.
    const delay = 50 + Math.floor(r() * 2450);
    let killed = false;
    const killer = new Promise<void>((resolve) => setTimeout(() => {
      killed = true;
      void d.kill().then(resolve);
    }, delay));
    let opName = 'idle';
    try {
      while (!killed) { opName = 'op'; await oneOp(); opName = 'between ops'; }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      if (!killed) { await killer; t.fail(`workload failed before the kill: ${String(e)}`); break; }
      opName = `op (${code})`;
    }
    await killer;
    if (await d.exited === 'SIGKILL') killedBySignal++;
    const killedLog = d.log();
    // RW_CRASH_KEEP: the image as the kill left it (journal not yet replayed), kept if this round fails.
    if (process.env.RW_CRASH_KEEP) { fs.mkdirSync(process.env.RW_CRASH_KEEP, { recursive: true }); fs.copyFileSync(img, path.join(process.env.RW_CRASH_KEEP, 'killed.img')); }
    kills++;
    killedDuring.set(opName, (killedDuring.get(opName) ?? 0) + 1);
    // After the kill the model of files touched by the interrupted op is unknown: forget them.
    // (They stay out of `expect` until a later fsync, which begin() ensured.)

    // Remount: replays the journal.  Then every recorded state must hold.
    daemon = await startRwDaemon(img, mnt);
    const bad: string[] = [];
    // What survived: every file's content, and all user.crash values from one getfattr run.
    const found = new Map<string, Live>();
    for (const dname of dirs) {
      for (const n of fs.readdirSync(path.join(mnt, dname))) found.set(`${dname}/${n}`, { data: await fs.promises.readFile(path.join(mnt, dname, n)) });
    }
    if (found.size > 0) {
      const g = await execFileP('getfattr', ['-n', 'user.crash', '-e', 'text', ...[...found.keys()]], { cwd: mnt, maxBuffer: 64 << 20 })
        .then((o) => o.stdout, (err: { stdout?: string }) => err.stdout ?? ''); // exit 1 when some file has no such attribute
      for (const m of g.matchAll(/^# file: (.*)\nuser\.crash="(.*)"$/gm)) { const l = found.get(m[1]!); if (l) l.xattr = m[2]!; }
    }
    for (const [rel, e] of expect) {
      const l = found.get(rel);
      if (e === 'absent') { if (l) bad.push(`${rel}: exists after an fsync'd unlink/rename`); continue; }
      if (!l) { bad.push(`${rel}: missing`); continue; }
      if (md5(l.data) !== e.md5) bad.push(`${rel}: content differs from what was fsync'd (${l.data.length} bytes, fsync'd ${e.size})`);
      if (e.xattr !== undefined && l.xattr !== e.xattr) bad.push(`${rel}: xattr differs`);
      checked++;
    }
    // Resync the model with what survived (unsynced changes may or may not have).
    live.clear();
    for (const [rel, l] of found) live.set(rel, l);
    for (const [rel, e] of expect) if (e === 'absent' && live.has(rel)) expect.delete(rel);
    const um = await daemon.unmount();
    const verifyLog = daemon.log();
    daemon = undefined;
    const f = fsckOcfs2(img);
    if (bad.length > 0 || um !== 0 || !f.clean) {
      // RW_CRASH_KEEP=DIR keeps the failing image (and the kill round's daemon logs) for a post-mortem.
      if (process.env.RW_CRASH_KEEP) {
        fs.mkdirSync(process.env.RW_CRASH_KEEP, { recursive: true });
        fs.copyFileSync(img, path.join(process.env.RW_CRASH_KEEP, 'fail.img'));
        fs.renameSync(path.join(process.env.RW_CRASH_KEEP, 'killed.img'), path.join(process.env.RW_CRASH_KEEP, 'fail-killed.img'));
        fs.writeFileSync(path.join(process.env.RW_CRASH_KEEP, 'logs.txt'), `${killedLog}\n----\n${verifyLog}\n----\n${f.out}`);
      }
      t.fail(`round ${round} (kill after ${delay} ms, ${opName}): ${bad.length} bad files, unmount ${um}, fsck ${f.status}`, {
        bad: bad.slice(0, 20), daemon: verifyLog.split('\n').slice(-30), fsck: f.out.split('\n').filter((l) => /\[|Skipping|error/i.test(l)).slice(0, 20),
      });
      break;
    }
  }
  t.equal(killedBySignal, kills, `the daemon died of the SIGKILL in all ${kills} rounds (never exited on its own first)`);
  const inOp = [...killedDuring].filter(([k]) => k.startsWith('op')).reduce((a, [, v]) => a + v, 0);
  t.ok(inOp > 0, `${inOp} of ${kills} kills landed inside an operation`);
  t.ok(fsyncs > 0 && checked > 0, `${ops} ops, ${fsyncs} fsyncs, ${checked} file checks after replay`);
  t.comment(`kills during: ${[...killedDuring].map(([k, v]) => `${k}=${v}`).join(', ')}; ${live.size} live files at the end`);
});
