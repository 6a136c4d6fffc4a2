/**
 * Lock torture with a cross-process checker (tests, `make soak`): random
 * lock / convert / unlock / trylock at NL, PR and EX on a set of names.
 *
 * The checker lives in a directory shared by every node process:
 *  - an EX holder creates `<name>.ex.<node>` exclusively, finds no PR marker,
 *    increments the counter kept in the LVB (u32 at byte 0) and appends
 *    "<node> <seq> <counter>" to `<name>.log`;
 *  - a PR holder creates `<name>.pr.<node>.<n>` and finds no EX marker;
 *  - markers are removed before the level is given up.
 * Markers of nodes that left the domain (dead) are ignored: after recovery
 * their locks are gone.  Any other overlap is a violation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DlmDomain, DlmError, DlmLockHandle } from './dlm';
import { LkmMode, LockMode, DlmStatus } from './wire';

export interface TortureOptions { names: string[]; durationMs: number; workers: number; dir: string; seed?: number }
export interface TortureResult {
  node: number; ops: number; exGrants: Record<string, number>; prGrants: number; trylockFailed: number;
  converts: number; violations: string[]; errors: string[];
}

export async function runTorture(dom: DlmDomain, o: TortureOptions): Promise<TortureResult> {
  const node = dom.node;
  const r: TortureResult = { node, ops: 0, exGrants: {}, prGrants: 0, trylockFailed: 0, converts: 0, violations: [], errors: [] };
  let seed = (o.seed ?? (Date.now() ^ (node << 16))) >>> 0;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
  let markerSeq = 0;
  const file = (name: string, rest: string): string => path.join(o.dir, `${Buffer.from(name).toString('hex')}.${rest}`);
  const liveMarker = (name: string, kind: 'ex' | 'pr'): string[] => {
    const pre = `${Buffer.from(name).toString('hex')}.${kind}.`;
    return fs.readdirSync(o.dir).filter((f) => f.startsWith(pre)).filter((f) => dom.domainMap.has(Number(f.slice(pre.length).split('.')[0])));
  };

  /** returns the marker to remove on leave */
  const enter = (h: DlmLockHandle, name: string): string | null => {
    if (h.mode === LkmMode.EX) {
      const m = file(name, `ex.${node}`);
      try { fs.writeFileSync(m, '', { flag: 'wx' }); } catch { r.violations.push(`${name}: EX marker already present at EX grant on node ${node}`); }
      const others = liveMarker(name, 'ex').filter((f) => !f.endsWith(`.ex.${node}`));
      if (others.length) r.violations.push(`${name}: EX granted on node ${node} while ${others.join(',')} present`);
      const prs = liveMarker(name, 'pr');
      if (prs.length) r.violations.push(`${name}: EX granted on node ${node} while PR holders ${prs.join(',')}`);
      const c = h.lvb.readUInt32BE(0) + 1;
      h.lvb.writeUInt32BE(c, 0);
      r.exGrants[name] = (r.exGrants[name] ?? 0) + 1;
      fs.appendFileSync(file(name, 'log'), `${node} ${r.exGrants[name]} ${c}\n`);
      return m;
    }
    if (h.mode === LkmMode.PR) {
      const m = file(name, `pr.${node}.${markerSeq++}`);
      fs.writeFileSync(m, '');
      const exs = liveMarker(name, 'ex');
      if (exs.length) r.violations.push(`${name}: PR granted on node ${node} while EX ${exs.join(',')}`);
      r.prGrants++;
      return m;
    }
    return null;
  };
  const leave = (m: string | null): void => { if (m) fs.rmSync(m, { force: true }); };

  const worker = async (): Promise<void> => {
    const end = Date.now() + o.durationMs;
    while (Date.now() < end) {
      const name = o.names[rnd(o.names.length)]!;
      const modes: LockMode[] = [LkmMode.NL, LkmMode.PR, LkmMode.EX];
      const mode = modes[rnd(3)]!;
      const noqueue = rnd(5) === 0;
      r.ops++;
      let h: DlmLockHandle;
      try {
        h = await dom.lock(name, mode, { valblk: true, noqueue });
      } catch (e) {
        if (e instanceof DlmError && e.status === DlmStatus.NOTQUEUED) { r.trylockFailed++; continue; }
        r.errors.push(`lock ${name}: ${(e as Error).message}`);
        continue;
      }
      let marker = enter(h, name);
      try {
        for (let k = rnd(3); k > 0; k--) {
          const to = modes[rnd(3)]!;
          // up-converts only from NL: two PR holders both converting to EX
          // deadlock in o2dlm too (dlmglue breaks that by cancelling its
          // convert on a BAST); a worker here never waits while blocking
          if (to === h.mode || (to > h.mode && h.mode !== LkmMode.NL)) continue;
          leave(marker); marker = null;
          try {
            await h.convert(to, { valblk: true, noqueue: rnd(4) === 0 });
            r.converts++;
          } catch (e) {
            if (!(e instanceof DlmError && e.status === DlmStatus.NOTQUEUED)) throw e;
            r.trylockFailed++;
          }
          marker = enter(h, name);
          if (rnd(4) === 0) await new Promise((res) => setTimeout(res, rnd(5)));
        }
      } catch (e) {
        r.errors.push(`convert ${name}: ${(e as Error).message}`);
      }
      leave(marker);
      try { await h.unlock({ valblk: true }); } catch (e) { r.errors.push(`unlock ${name}: ${(e as Error).message}`); }
    }
  };
  await Promise.all(Array.from({ length: o.workers }, () => worker()));
  return r;
}

/** The counters the LVBs hold now (PR with valblk on each name). */
export async function readCounters(dom: DlmDomain, names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const h = await dom.lock(n, LkmMode.PR, { valblk: true });
    out[n] = h.lvb.readUInt32BE(0);
    await h.unlock();
  }
  return out;
}
