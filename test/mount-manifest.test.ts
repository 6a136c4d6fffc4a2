/**
 * The read-only FUSE mount against the kernel-written reference images:
 * everything read through the mount (from this process, which is not the one
 * serving it) must match the manifest exactly.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { REFERENCE_IMAGES, pristineImage, readManifest, type ManifestRow } from './lib/refimages';
import { mountRo, sh } from './lib/mount';

/** Manifest paths escape non-UTF-8 bytes as \xHH. */
function pathBytes(p: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of p.matchAll(/\\x([0-9a-fA-F]{2})/g)) {
    parts.push(Buffer.from(p.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1]!, 16)]));
    last = m.index! + m[0].length;
  }
  parts.push(Buffer.from(p.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

function typeOf(st: fs.BigIntStats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  return '?';
}

function md5File(p: Buffer): string {
  const h = createHash('md5');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally { fs.closeSync(fd); }
  return h.digest('hex');
}

/** getfattr for one path: "name=hex;name=hex" sorted, as the manifest writes it. */
function xattrsOf(p: Buffer): string {
  const out = execFileSync('timeout', ['30', 'getfattr', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p.toString('latin1')],
    { encoding: 'latin1' });
  const items = out.split('\n').filter((l) => l.includes('=') || /^[a-z]+\.[^#]/.test(l)).map((l) => {
    const eq = l.indexOf('=');
    if (eq < 0) return `${l}=`;
    const v = l.slice(eq + 1);
    return `${l.slice(0, eq)}=${v.startsWith('0x') ? v.slice(2) : v}`;
  });
  return items.length ? items.sort().join(';') : '-';
}

function checkRow(t: Test, mnt: string, row: ManifestRow): void {
  const p = Buffer.concat([Buffer.from(mnt), pathBytes(row.path === '/' ? '' : row.path)]);
  const st = fs.lstatSync(p, { bigint: true });
  const got = {
    type: typeOf(st), mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
    uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size), nlink: Number(st.nlink),
    mtime: `${st.mtimeNs / 1_000_000_000n}.${(((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0')}`,
  };
  // Negative times: floor division keeps "sec.nsec" with 0 <= nsec.
  if (st.mtimeNs < 0n) {
    const sec = (st.mtimeNs - 999_999_999n) / 1_000_000_000n;
    got.mtime = `${sec}.${(st.mtimeNs - sec * 1_000_000_000n).toString().padStart(9, '0')}`;
  }
  const want = { type: row.type, mode: row.mode, uid: row.uid, gid: row.gid, size: row.size, nlink: row.nlink, mtime: row.mtime };
  if (row.type === 'd') { delete (got as Partial<typeof got>).size; delete (want as Partial<typeof want>).size; }
  t.same(got, want, `${row.path}: attributes`);
  if (row.type === 'f' && row.md5 !== '-') t.equal(md5File(p), row.md5, `${row.path}: md5`);
  if (row.type === 'l') t.equal(fs.readlinkSync(p, { encoding: 'buffer' }).toString('utf8'), row.target, `${row.path}: link target`);
  if (row.type === 'c' || row.type === 'b') {
    const rdev = Number(st.rdev);
    t.equal(`${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`, row.rdev, `${row.path}: rdev`);
  }
  if (row.xattrs !== '-' || row.path.startsWith('/xattr')) t.equal(xattrsOf(p), row.xattrs, `${row.path}: xattrs`);
}

for (const name of REFERENCE_IMAGES) {
  t.test(`reference image ${name} read through the FUSE mount`, async (t) => {
    const image = pristineImage(name);
    const rows = readManifest(name);
    const m = mountRo(image);
    t.teardown(() => m.unmount());
    if (name === 'dirty-journal-4k') t.match(m.stderr, /journal of slot 0 needs recovery: replayed in memory/, 'dirty journal replayed in memory');
    if (name.startsWith('cluster')) t.match(m.stderr, /cluster-mode volume/, 'cluster-mode warning');
    for (const row of rows) {
      try {
        checkRow(t, m.mountpoint, row);
      } catch (e) {
        t.fail(`${row.path}: ${(e as Error).message}`);
      }
    }
    // The usual tools, from separate processes.  find's output is compared
    // as bytes (names need not be UTF-8): NUL-separated, each path as a
    // binary (latin1) string so distinct byte sequences stay distinct.
    const findOut = execFileSync('timeout', ['300', 'find', m.mountpoint, '-printf', '/%P\\0'], { maxBuffer: 256 << 20 });
    const found = new Set<string>();
    for (let start = 0; start < findOut.length;) {
      const end = findOut.indexOf(0, start);
      if (end < 0) break;
      found.add(findOut.subarray(start, end).toString('latin1'));
      start = end + 1;
    }
    const listed = rows.map((r) => pathBytes(r.path).toString('latin1'));
    const missing = listed.filter((p) => !found.has(p));
    t.same(missing, [], 'find lists every manifest path');
    // The dirty-journal manifest lists only what must be visible after replay; the others list everything.
    if (name !== 'dirty-journal-4k') t.equal(found.size, rows.length, 'find lists nothing beyond the manifest');
    // ls, du and stat (coreutils, separate processes) see what the kernel wrote
    const root = rows.find((r) => r.path === '/');
    if (root) t.equal(sh(`stat -c '%h %s %a' ${m.mountpoint}/.`).trim(), `${root.nlink} ${root.size} ${Number.parseInt(root.mode, 8).toString(8)}`, 'stat of the root: links, size, mode as in the manifest');
    if (name !== 'dirty-journal-4k') {
      // -A: every entry but . and ..; -q: one line per entry whatever its name's bytes
      const entries = Number(sh(`ls -lRAq ${m.mountpoint} | grep -cE '^[-dlcbps][-rwxsStT]{9}'`).trim());
      t.equal(entries, rows.length - 1, 'ls -lRA lists one line per manifest path');
      // -l: hard links counted each time, as the manifest lists every name
      const du = Number(sh(`du -s -l --apparent-size -B1 ${m.mountpoint}`).trim().split(/\s+/)[0]);
      t.equal(du, rows.reduce((a, r) => a + r.size, 0), 'du -sl --apparent-size equals the sum of the manifest sizes');
    }
    const df = sh(`df -B1 --output=size,used ${m.mountpoint} | tail -1`).trim().split(/\s+/).map(Number);
    t.ok(df[0]! > 0 && df[1]! > 0 && df[1]! < df[0]!, `statfs is plausible (${df.join(' ')})`);
  });
}

void path;
