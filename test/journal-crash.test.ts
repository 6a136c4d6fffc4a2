/**
 * Crash safety of the journal: a child process runs journaled transactions
 * on a mkfs.ocfs2 image and is SIGKILLed — half of the time at a chosen
 * step of commit/checkpoint (after the log blocks, before/after the commit
 * record, between writing home and moving the log tail), half at a random
 * moment.  After each kill the parent reopens the image read-write (which
 * replays the journal), checks that the state is exactly the one after some
 * transaction K no older than the last flush() the child finished (every
 * metadata block of that transaction and none of a later one: nothing torn),
 * that ordered data written for transactions <= K is there, closes cleanly
 * and runs fsck.ocfs2 -fn.  The same image carries on to the next round.
 *
 * Each transaction writes pattern blocks into the free tail of the volume
 * (some starting with the JBD2 magic, so they are escaped), the root inode's
 * atime (epoch * 100000 + k: real metadata with its ECC), forgets a block
 * (revoke), writes file data (ordered mode) and reuses a forgotten block for
 * data (forcing commit + checkpoint).
 */
import { spawn, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { openReadWrite } from '../src/libocfs2/rwmount';
import { CHECK_OFFSET } from '../src/libocfs2/blockcheck';
import { DinodeHeader } from '../src/libocfs2/structs/dinode';
import { JBD2_MAGIC } from '../src/libocfs2/jbd2';
import type { JournalStep } from '../src/libocfs2/journal';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` };
const M = 48; // metadata pattern blocks
const D = 16; // data blocks
const REGION = M + D;
const EPOCH = 100000;

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

interface Plan { meta: number[]; forget: number | null; data: number[]; reuse: number | null }

/** What transaction k of an epoch does (offsets into the region); pure. */
function plan(epoch: number, k: number): Plan {
  const r = rng(epoch * 7919 + k * 104729);
  const meta = new Set<number>();
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) meta.add(Math.floor(r() * M));
  const forget = r() < 0.3 ? Math.floor(r() * M) : null;
  const data = r() < 0.6 ? [M + Math.floor(r() * D)] : [];
  let reuse: number | null = null;
  if (k > 1) {
    const prev = plan(epoch, k - 1);
    if (prev.forget !== null && !meta.has(prev.forget) && prev.forget !== forget) reuse = prev.forget;
  }
  return { meta: [...meta], forget, data, reuse };
}

function version(epoch: number, k: number): number { return epoch * EPOCH + k; }

function pattern(bs: number, blkno: number, ver: number): Buffer {
  const b = Buffer.alloc(bs, (blkno * 31 + ver) & 0xff);
  // Every third version starts with the JBD2 magic: the writer must escape it.
  b.writeUInt32BE(ver % 3 === 0 ? JBD2_MAGIC : 0x50415454, 0);
  b.writeUInt32LE(blkno, 8);
  b.writeUInt32LE(ver, 12);
  return b;
}

function parseVersion(bs: number, blkno: number, b: Buffer): number | null {
  const v = b.readUInt32LE(12);
  return b.equals(pattern(bs, blkno, v)) ? v : null;
}

// ---------------------------------------------------------------------------
// Child: run transactions until killed.

async function child(img: string, epoch: number, killStep: string, killNth: number): Promise<void> {
  let seen = 0;
  const onStep = (s: JournalStep): void => {
    if (s === killStep && ++seen === killNth) process.kill(process.pid, 'SIGKILL');
  };
  // Wait for the parent's go (it prespawns us while it checks the previous round).
  await new Promise<void>((resolve) => { process.stdin.once('data', () => resolve()); });
  const rv = await openReadWrite(img, { journalOptions: { commitIntervalMs: 40, maxPinnedBytes: 96 * 4096, onStep } });
  const vol = rv.vol;
  const bs = vol.blockSize;
  const base = vol.dev.blockCount - REGION;
  const out = (s: string): void => { fs.writeSync(1, `${s}\n`); };
  out('ready');
  const r = rng(epoch);
  for (let k = 1; ; k++) {
    const p = plan(epoch, k);
    const ver = version(epoch, k);
    out(`start ${k}`);
    await rv.tm.run(async (tx) => {
      const { buf } = await vol.readInode(vol.rootBlkno);
      const c = Buffer.from(buf);
      c.writeBigInt64LE(BigInt(ver), DinodeHeader.offsetOf('i_atime'));
      tx.writeMeta(vol.rootBlkno, c, CHECK_OFFSET.dinode);
      for (const o of p.meta) tx.writeMeta(base + o, pattern(bs, base + o, ver), null);
      if (p.forget !== null) tx.forget(base + p.forget);
      for (const o of [...p.data, ...(p.reuse !== null ? [p.reuse] : [])]) await tx.writeData(base + o, pattern(bs, base + o, ver));
    });
    if (r() < 0.15) { await rv.tm.flush(); out(`flushed ${k}`); }
    if (r() < 0.3) await new Promise((res) => setTimeout(res, Math.floor(r() * 15)));
  }
}

// ---------------------------------------------------------------------------
// Parent

type State = { kind: 'meta' | 'data'; ver: number } | { kind: 'unknown' };

/**
 * Plain-JS copy of src/ and this file (typescript.transpileModule, no type
 * check) so each child starts in a fraction of a second instead of going
 * through the TypeScript loader again.
 */
function transpileForChildren(outDir: string): string {
  const ts = require('typescript') as typeof import('typescript');
  const repo = path.resolve(__dirname, '..');
  const files: string[] = [path.join(repo, 'test', path.basename(__filename))];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f); else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(f);
    }
  };
  walk(path.join(repo, 'src'));
  for (const f of files) {
    const js = ts.transpileModule(fs.readFileSync(f, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: f,
    }).outputText;
    const out = path.join(outDir, path.relative(repo, f)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, js);
  }
  return path.join(outDir, 'test', path.basename(__filename).replace(/\.ts$/, '.js'));
}

async function parent(): Promise<void> {
  const t = (await import('tap')).default;

  t.test('SIGKILL at >= 20 points: replay gives a whole transaction, ordered data, fsck clean', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jcrash-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const childJs = transpileForChildren(path.join(dir, 'js'));
    const img = path.join(dir, 'v.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 128 * 1024 * 1024);
    // The smallest journal the kernel accepts (4 MiB) so the log wraps and checkpoints often.
    execFileSync('timeout', ['60', 'mkfs.ocfs2', '-q', '-F', '-M', 'local', '-N', '2', '-b', '4096', '-C', '4096', '-J', 'size=4M', img], { env: SBIN, stdio: 'pipe' });

    // Baseline: the region as mkfs left it (zeros: "unknown" until written).
    const states = new Map<number, State>();
    for (let o = 0; o < REGION; o++) states.set(o, { kind: 'unknown' });
    const steps: JournalStep[] = ['commit-log', 'commit-record', 'committed', 'checkpoint-home', 'checkpoint-sb'];
    const ROUNDS = 24;
    // JOURNAL_CRASH_SEED replays a run (the seed is printed)
    const seed = Number(process.env.JOURNAL_CRASH_SEED ?? 4242);
    t.comment(`seed ${seed} (JOURNAL_CRASH_SEED=${seed} replays this run)`);
    const master = rng(seed);
    let targetedHits = 0;
    let targetedFallbacks = 0;
    let totalTx = 0;
    let next: ChildProcess | null = null;
    let nextNth = 0;
    const exitOf = new WeakMap<ChildProcess, Promise<number | null>>();
    const spawnChild = (e: number, step: string, nth: number): ChildProcess => {
      nextNth = nth;
      const p = spawn(process.execPath, [childJs, 'child', img, String(e), step, String(nth)], {
        stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_PATH: path.resolve(__dirname, '..', 'node_modules') },
      });
      exitOf.set(p, new Promise((resolve) => p.on('exit', (code, sig) => resolve(sig ? -1 : code))));
      return p;
    };
    t.teardown(() => { next?.kill('SIGKILL'); });
    for (let epoch = 1; epoch <= ROUNDS; epoch++) {
      const targeted = epoch % 2 === 0;
      const killStep = targeted ? steps[(epoch / 2) % steps.length]! : 'none';
      const killNth = next ? nextNth : 1 + Math.floor(master() * 6);
      const proc = next ?? spawnChild(epoch, killStep, killNth);
      next = null;
      let lastStarted = 0;
      let lastFlushed = 0;
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      const rl = readline.createInterface({ input: proc.stdout! });
      const ready = new Promise<void>((resolve) => {
        rl.on('line', (l) => {
          if (l === 'ready') resolve();
          const m = /^(start|flushed) (\d+)$/.exec(l);
          if (m) { if (m[1] === 'start') lastStarted = Number(m[2]); else lastFlushed = Number(m[2]); }
        });
      });
      proc.stdin!.write('go\n');
      const exited = exitOf.get(proc)!;
      await Promise.race([ready, exited]);
      // a targeted round kills itself at its step; the timer only ends one that never got there
      // (a loaded machine), and that round then says so and counts as a fallback, not a hit
      const delay = targeted ? 60000 : 150 + Math.floor(master() * 900);
      let byTimer = false;
      const timer = setTimeout(() => { byTimer = true; proc.kill('SIGKILL'); }, delay);
      const code = await exited;
      clearTimeout(timer);
      if (targeted) { if (byTimer) targetedFallbacks++; else targetedHits++; }
      rl.close();
      if (code !== -1) { t.fail(`child exited by itself (${code}): ${stderr}`); break; }
      // Start the next child's (slow) module loading while this round is checked.
      if (epoch < ROUNDS) {
        const e2 = epoch + 1;
        const targeted2 = e2 % 2 === 0;
        next = spawnChild(e2, targeted2 ? steps[(e2 / 2) % steps.length]! : 'none', 1 + Math.floor(master() * 6));
      }

      // Reopen read-write: replays the journal.
      const rv = await openReadWrite(img, {});
      const vol = rv.vol;
      const bs = vol.blockSize;
      const base = vol.dev.blockCount - REGION;
      const atime = Number((await vol.readInode(vol.rootBlkno)).inode.atime.sec);
      const K = atime >= version(epoch, 0) ? atime - version(epoch, 0) : 0;
      let ok = K >= lastFlushed && K <= lastStarted;
      if (!ok) t.fail(`epoch ${epoch}: recovered transaction ${K}, child flushed ${lastFlushed}, started ${lastStarted}`);
      // Expected states after transactions 1..K; data written by later transactions may also be there.
      const later = new Map<number, Set<number>>();
      for (let k = 1; k <= lastStarted + 1; k++) {
        const p = plan(epoch, k);
        if (k <= K) {
          for (const o of p.meta) states.set(o, { kind: 'meta', ver: version(epoch, k) });
          if (p.forget !== null) states.set(p.forget, { kind: 'unknown' });
          for (const o of [...p.data, ...(p.reuse !== null ? [p.reuse] : [])]) states.set(o, { kind: 'data', ver: version(epoch, k) });
        } else {
          for (const o of [...p.data, ...(p.reuse !== null ? [p.reuse] : [])]) {
            if (!later.has(o)) later.set(o, new Set());
            later.get(o)!.add(version(epoch, k));
          }
        }
      }
      for (let o = 0; o < REGION; o++) {
        const st = states.get(o)!;
        const got = await vol.dev.readBlocks(base + o, 1);
        const v = parseVersion(bs, base + o, got);
        if (st.kind === 'unknown') {
          if (v !== null) states.set(o, { kind: 'meta', ver: v });
          continue;
        }
        const okVer = v !== null && (v === st.ver || later.get(o)?.has(v) === true);
        if (!okVer) {
          ok = false;
          t.fail(`epoch ${epoch}, K ${K}: block +${o} (${st.kind}) holds version ${v}, expected ${st.ver}${later.has(o) ? ` or one of ${[...later.get(o)!].join(',')}` : ''}`);
        } else {
          states.set(o, { kind: 'meta', ver: v! });
        }
      }
      totalTx += K;
      await rv.close();
      const f = spawnSync('timeout', ['120', 'fsck.ocfs2', '-fn', img], { env: SBIN, encoding: 'utf8' });
      const out = `${f.stdout}${f.stderr}`;
      if (f.status !== 0 || /Skipping journal replay|\[[A-Z_]+\]/.test(out)) {
        t.fail(`epoch ${epoch}: fsck.ocfs2 -fn not clean (${f.status}):\n${out}`);
        ok = false;
      }
      t.ok(ok, `kill ${epoch} (${targeted ? (byTimer ? `target ${killStep} #${killNth} not reached in ${delay} ms: killed by the timer` : `at ${killStep} #${killNth}`) : 'random time'}): recovered to transaction ${K} (flushed ${lastFlushed}, started ${lastStarted})`);
      if (!ok) break;
    }
    t.ok(totalTx > ROUNDS, `transactions survived across rounds (${totalTx})`);
    t.equal(targetedFallbacks, 0, `every targeted kill landed on its step (${targetedHits} did, ${targetedFallbacks} fell back to the timer)`);
  });
}

if (process.argv[2] === 'child') {
  child(process.argv[3]!, Number(process.argv[4]), process.argv[5]!, Number(process.argv[6])).catch((e: unknown) => {
    process.stderr.write(`child failed: ${(e as Error).stack}\n`);
    process.exit(3);
  });
} else {
  void parent();
}
