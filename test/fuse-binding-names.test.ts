/**
 * Names that are not UTF-8 through the binding, both ways, on a real FUSE
 * mount served by test/fixtures/fuse-memfs.ts in a child process.  Every
 * check runs in this process (or tools it starts), with Buffer paths, and
 * compares raw bytes.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startMemfs, run, bashBytes, type MemfsServer } from './fixtures/fuse-helpers';
import { ENC_NAMES, ENC_LINK, ENC_TARGET, ENC_XATTRS, type LogEntry, type NodeInfo } from './fixtures/fuse-memfs';
import { PATH_ENCODING, bytesToName, pathToBytes, isBinaryString, displayPath } from '../src/fuse/binding';

const hex = (b: Buffer) => b.toString('hex');
const sortedHex = (bs: Buffer[]) => bs.map(hex).sort();

async function logOf(s: MemfsServer): Promise<LogEntry[]> {
  return (await s.request<{ log: LogEntry[] }>({ cmd: 'log' })).log;
}
async function childrenHex(s: MemfsServer, p: Buffer): Promise<string[]> {
  return (await s.request<{ hex: string[] }>({ cmd: 'children', path: bytesToName(p) })).hex.sort();
}

t.test('binary-string helpers', async (t) => {
  t.equal(PATH_ENCODING, 'latin1');
  for (const b of [...ENC_NAMES, ENC_TARGET, Buffer.from(Array.from({ length: 256 }, (_, i) => i))]) {
    const s = bytesToName(b);
    t.equal(s.length, b.length, 'one char per byte');
    t.ok(isBinaryString(s));
    t.same(pathToBytes(s), b, `round trip of ${hex(b).slice(0, 32)}`);
  }
  t.equal(bytesToName(Buffer.from('café')), 'caf\u00c3\u00a9', 'UTF-8 bytes, not the text');
  t.throws(() => pathToBytes('日本語'), TypeError, 'a non-binary string is refused, not cut to its low bytes');
  t.notOk(isBinaryString('a\u0100'));
  t.equal(displayPath(bytesToName(Buffer.from('/names/raw\xff\x80byte', 'latin1'))), '/names/raw\\xff\\x80byte', 'manifest-style escapes');
  t.equal(displayPath(bytesToName(Buffer.concat([Buffer.from('/d/raw'), Buffer.from([0xff, 0x0a]), Buffer.from('日本語/café')]))),
    '/d/raw\\xff\\x0a日本語/café', 'valid UTF-8 as text, other bytes and control characters escaped');
  t.equal(displayPath(bytesToName(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80]))), '\\xc0\\xaf\\xed\\xa0\\x80', 'overlong and surrogate encodings are escaped');
});

t.test('names of arbitrary bytes through a real mount', async (t) => {
  const s = await startMemfs({ options: ['attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0'] });
  t.teardown(() => s.cleanup());
  const enc = Buffer.from(`${s.mnt}/enc`);
  const inEnc = (name: Buffer) => Buffer.concat([enc, Buffer.from('/'), name]);

  t.test('server-made names: readdir, stat, read, readlink from another process', async (t) => {
    const listed = fs.readdirSync(enc, { encoding: 'buffer' });
    t.same(sortedHex(listed), sortedHex([...ENC_NAMES, ENC_LINK]), 'readdir returns exactly the bytes the server made');
    for (const name of ENC_NAMES) {
      const p = inEnc(name);
      const st = fs.lstatSync(p);
      t.ok(st.isFile(), `lstat ${displayPath(bytesToName(name))}`);
      t.equal(st.size, name.length);
      t.same(fs.readFileSync(p), name, 'the lookup reached the node with this exact name');
    }
    const l = inEnc(ENC_LINK);
    t.ok(fs.lstatSync(l).isSymbolicLink());
    t.same(fs.readlinkSync(l, { encoding: 'buffer' }), ENC_TARGET, 'readlink target bytes (not UTF-8, and UTF-8) intact');
    // A tool that never touches Node's string handling: find -print0.
    const r = await run('find', [s.mnt + '/enc', '-mindepth', '1', '-printf', '%f\\0'], { encoding: 'latin1' });
    t.equal(r.code, 0, r.stderr);
    t.same(r.stdout.split('\0').filter((x) => x).map((x) => hex(Buffer.from(x, 'latin1'))).sort(), sortedHex([...ENC_NAMES, ENC_LINK]));
    // A byte string that is not there: ENOENT, not a match on a mangled name.
    t.throws(() => fs.lstatSync(inEnc(Buffer.from([0x72, 0x61, 0x77, 0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd, 0x62, 0x79, 0x74, 0x65]))),
      { code: 'ENOENT' }, 'raw\\xff\\x80byte with U+FFFD replacements is a different name');
    t.throws(() => fs.lstatSync(inEnc(Buffer.from('café', 'latin1'))), { code: 'ENOENT' }, 'café in Latin-1 (0xE9) is not the UTF-8 café');
  });

  t.test('client-made names: create, list, stat, symlink/readlink, rename, unlink', async (t) => {
    const dir = Buffer.from(`${s.mnt}/made`);
    fs.mkdirSync(dir);
    const made = [
      Buffer.from([0x78, 0xff]),
      Buffer.from(Array.from({ length: 128 }, (_, i) => 0xff - i)),
      Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]), // invalid UTF-8 sequences
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate: invalid UTF-8
      Buffer.from('日本語', 'utf8'),
      Buffer.from('café', 'utf8'),
      Buffer.from('café', 'latin1'), // a distinct name: 0x63 0x61 0x66 0xe9
    ];
    const inMade = (n: Buffer) => Buffer.concat([dir, Buffer.from('/'), n]);
    for (const n of made) fs.writeFileSync(inMade(n), Buffer.concat([Buffer.from('content:'), n]));
    t.same(await childrenHex(s, Buffer.from('/made')), sortedHex(made), 'the server stored exactly the bytes the kernel sent');
    t.same(sortedHex(fs.readdirSync(dir, { encoding: 'buffer' })), sortedHex(made), 'and lists them back unchanged');
    for (const n of made) {
      t.equal(fs.statSync(inMade(n)).size, 8 + n.length);
      t.same(fs.readFileSync(inMade(n)), Buffer.concat([Buffer.from('content:'), n]));
    }
    const created = (await logOf(s)).filter((e) => e.op === 'create' && e.path.startsWith('/made/')).map((e) => hex(pathToBytes(e.path.slice(6))));
    t.same(created.sort(), sortedHex(made), 'create received each raw name');

    const target = Buffer.concat([Buffer.from([0xfe, 0xff, 0x2f]), Buffer.from('日本語'), Buffer.from([0x80])]);
    const link = inMade(Buffer.from([0x6c, 0xe9]));
    fs.symlinkSync(target, link);
    const sym = (await logOf(s)).filter((e) => e.op === 'symlink').at(-1);
    t.same(pathToBytes(sym?.to ?? ''), target, 'symlink received the raw target');
    t.same(fs.readlinkSync(link, { encoding: 'buffer' }), target, 'readlink returns it byte for byte');
    t.equal(fs.lstatSync(link).size, target.length);

    const from = inMade(made[0]!);
    const to = inMade(Buffer.from([0x72, 0x65, 0x6e, 0x80, 0x81]));
    fs.renameSync(from, to);
    t.same(fs.readFileSync(to), Buffer.concat([Buffer.from('content:'), made[0]!]), 'rename between raw names');
    fs.unlinkSync(to);
    t.throws(() => fs.lstatSync(to), { code: 'ENOENT' });
  });

  t.test('xattr names of raw bytes: getxattr, listxattr, setxattr, removexattr', async (t) => {
    const plain = `${s.mnt}/enc/plain`;
    for (const [k, v] of ENC_XATTRS) {
      const r = await run('bash', ['-c', `getfattr --only-values -n ${bashBytes(k)} "$1"`, '_', plain], { encoding: 'latin1' });
      t.equal(r.code, 0, r.stderr);
      t.same(Buffer.from(r.stdout, 'latin1'), v, `getxattr ${displayPath(bytesToName(k))}`);
    }
    const l = await run('getfattr', ['-d', '-m', '-', '-e', 'hex', '--absolute-names', plain], { encoding: 'latin1' });
    t.equal(l.code, 0, l.stderr);
    const names = l.stdout.split('\n').filter((x) => x.includes('=')).map((x) => hex(Buffer.from(x.slice(0, x.indexOf('=')), 'latin1')));
    t.same(names.sort(), sortedHex(ENC_XATTRS.map(([k]) => k)), 'listxattr names, byte for byte');

    // Set and remove a raw name on a file with a raw name.
    const file = Buffer.concat([Buffer.from(`${s.mnt}/enc/`), ENC_NAMES[0]!]);
    const key = Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0x80, 0xfe, 0x6b]);
    let r = await run('bash', ['-c', `setfattr -n ${bashBytes(key)} -v 0x0a0b ${bashBytes(file)}`]);
    t.equal(r.code, 0, r.stderr);
    const stored = await s.request<{ hex: string[] }>({ cmd: 'xattrNames', path: `/enc/${bytesToName(ENC_NAMES[0]!)}` });
    t.same(stored.hex, [hex(key)], 'setxattr received the raw name');
    r = await run('bash', ['-c', `getfattr --only-values -n ${bashBytes(key)} ${bashBytes(file)}`], { encoding: 'latin1' });
    t.same(Buffer.from(r.stdout, 'latin1'), Buffer.from([0x0a, 0x0b]));
    r = await run('bash', ['-c', `setfattr -x ${bashBytes(key)} ${bashBytes(file)}`]);
    t.equal(r.code, 0, r.stderr);
    t.same((await s.request<{ hex: string[] }>({ cmd: 'xattrNames', path: `/enc/${bytesToName(ENC_NAMES[0]!)}` })).hex, [], 'removexattr received the raw name');
  });

  t.test('names an implementation gets wrong are refused, not mangled', async (t) => {
    const listed = fs.readdirSync(Buffer.from(`${s.mnt}/badnames`), { encoding: 'buffer' });
    t.same(listed.map((b) => b.toString('latin1')), ['good'], 'only the usable entry is listed');
    const errors = (await logOf(s)).filter((e) => e.op === 'error:readdir' && e.path === '/badnames').map((e) => e.name ?? '');
    t.equal(errors.length, 4, 'each dropped entry is reported');
    t.match(errors.join('\n'), /not a binary \(latin1\) string/);
    t.match(errors.join('\n'), /contains '\/' or NUL/);
    t.match(errors.join('\n'), /empty name/);
    t.throws(() => fs.readlinkSync(path.join(s.mnt, 'badlink'), { encoding: 'buffer' }), { code: 'EIO' },
      'readlink returning a non-binary string fails with EIO');
  });
});
