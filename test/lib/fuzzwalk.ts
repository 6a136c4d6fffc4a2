/**
 * The walker of the corruption fuzz test, run as its own process against a
 * mount (a FUSE mount must not be touched from the process serving it, and a
 * stalled request must not stall the test): for each path given, lstat, then
 * readlink / readdir / the whole content (md5) as the type says.
 * Prints one JSON object: per path what worked, the md5, and the slowest
 * request in ms.  Usage: node fuzzwalk.js MOUNTPOINT LISTFILE
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

interface Row { path: string; ok: boolean; err?: string; md5?: string; target?: string; entries?: number }

async function main(): Promise<void> {
  const [mnt, list] = process.argv.slice(2) as [string, string];
  const paths = fs.readFileSync(list, 'utf8').split('\n').filter((l) => l.length > 0);
  const rows: Row[] = [];
  let slowest = 0;
  let slowestOp = '';
  const timed = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try { return await fn(); } finally {
      const ms = Date.now() - t0;
      if (ms > slowest) { slowest = ms; slowestOp = op; }
    }
  };
  for (const p of paths) {
    const full = path.join(mnt, p);
    try {
      const st = await timed(`lstat ${p}`, () => fs.promises.lstat(full));
      const row: Row = { path: p, ok: true };
      if (st.isSymbolicLink()) row.target = await timed(`readlink ${p}`, () => fs.promises.readlink(full));
      else if (st.isDirectory()) row.entries = (await timed(`readdir ${p}`, () => fs.promises.readdir(full))).length;
      else if (st.isFile()) {
        const h = createHash('md5');
        const fh = await timed(`open ${p}`, () => fs.promises.open(full, 'r'));
        try {
          const buf = Buffer.alloc(1 << 20);
          for (;;) {
            const { bytesRead } = await timed(`read ${p}`, () => fh.read(buf, 0, buf.length, null));
            if (bytesRead === 0) break;
            h.update(buf.subarray(0, bytesRead));
          }
        } finally { await fh.close(); }
        row.md5 = h.digest('hex');
      }
      rows.push(row);
    } catch (e) {
      rows.push({ path: p, ok: false, err: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
  }
  process.stdout.write(JSON.stringify({ rows, slowest, slowestOp }));
}

void main().catch((e) => { process.stderr.write(String(e)); process.exit(2); });
