/**
 * `ocfs2-fuse inspect` against debugfs.ocfs2 on the same volumes: a command
 * file with stats, ls -l of the root and system directories and stat of
 * every entry in both runs through `-f` in each tool and the outputs are
 * equal byte for byte (flag names, dates with nanoseconds, chains and
 * groups, extents); -R and commands piped on stdin likewise.  The
 * interactive prompt is driven through a pseudo-terminal (script(1)):
 * prompt, help, history (up arrow repeats a command), quit.  --json stays
 * JSON.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { refMkfs, run, sparseImage } from './mkfs-compare';
import { CLI, tmpDir } from './lib/mount';
import { pristineImage, type ReferenceImage } from './lib/refimages';

const dir = tmpDir('inspect-debugfs');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 2 ** 20;

const ours = (args: string[], input?: string): string => run(process.execPath, [CLI, 'inspect', ...args], input).stdout;
const theirs = (args: string[], input?: string): string => run('debugfs.ocfs2', args, input).stdout;

function names(img: string, p: string): string[] {
  return theirs(['-R', `ls ${p}`, img]).split('\n').map((l) => l.trim().split(/\s+/).slice(4).join(' ')).filter((n) => n && n !== '.' && n !== '..');
}

function images(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const n of ['local-4k', 'cluster-1k-64k-max', 'local-512-4k'] as ReferenceImage[]) out.push([n, pristineImage(n)]);
  for (const [n, args] of [['mkfs-default', ['-M', 'local', '-N', '2']], ['mkfs-compat', ['-N', '3', '-b', '2k', '--fs-feature-level=max-compat']]] as const) {
    const f = path.join(dir, `${n}.img`);
    sparseImage(f, 300 * MiB);
    refMkfs(f, [...args]);
    out.push([n, f]);
  }
  return out;
}

for (const [name, img] of images()) {
  t.test(`${name}: stats, ls -l and stat of every entry as debugfs.ocfs2`, async (t) => {
    const cmds = ['stats', 'ls -l /', 'ls -l //'];
    for (const n of names(img, '/')) cmds.push(`stat /${n}`);
    for (const n of names(img, '//')) cmds.push(`stat //${n}`);
    const file = path.join(dir, `${name}.cmds`);
    fs.writeFileSync(file, `${cmds.join('\n')}\n`);
    const a = ours(['-f', file, img]);
    const b = theirs(['-f', file, img]);
    t.ok(cmds.length > 10, `${cmds.length} commands`);
    const la = a.split('\n');
    const lb = b.split('\n');
    const first = la.findIndex((l, i) => l !== lb[i]);
    t.equal(first, -1, first < 0 ? 'equal' : `first difference at line ${first}:\n  ours:   ${la[first]}\n  debugfs: ${lb[first]}`);
    t.equal(a.length, b.length);
    // One command through -R, and the same commands piped on stdin.
    t.equal(ours(['-R', 'stat //global_bitmap', img]), theirs(['-R', 'stat //global_bitmap', img]));
    t.equal(ours([img], 'stats\nls -l /\n'), theirs([img], 'stats\nls -l /\n'));
  });
}

t.test('the interactive prompt in a pseudo-terminal', async (t) => {
  const img = path.join(dir, 'pty.img');
  sparseImage(img, 200 * MiB);
  refMkfs(img, ['-M', 'local', '-N', '2', '-L', 'ptylabel']);
  const session = (input: string): string => {
    const r = spawnSync('timeout', ['60', 'script', '-qec', `${process.execPath} ${CLI} inspect ${img}`, '/dev/null'],
      { encoding: 'utf8', input });
    return r.stdout;
  };
  const s = session('help\nstats\n\x1b[A\nquit\nstats\n');
  t.match(s, /debugfs: /, 'prompt');
  t.match(s, /logdump <slot>\s+the journal of a slot/, 'help lists the commands');
  t.equal((s.match(/Label: ptylabel/g) ?? []).length, 2, 'stats, then the up arrow runs it again from history; nothing after quit');
  const bad = session('nosuch\nstats\nq\n');
  t.match(bad, /unknown command "nosuch"/, 'an error does not end the session');
  t.match(bad, /Label: ptylabel/);
  // Ctrl-D ends it too.
  t.match(session('stats\n\x04'), /Label: ptylabel/);
});

t.test('--json output unchanged', async (t) => {
  const img = path.join(dir, 'json.img');
  sparseImage(img, 200 * MiB);
  refMkfs(img, ['-M', 'local', '-L', 'jl']);
  const s = JSON.parse(ours([img, 'stats', '--json'])) as { label: string; blockSize: number };
  t.equal(s.label, 'jl');
  const st = JSON.parse(ours(['--json', '-R', 'stat /', img])) as { inode: number; flags: string[] };
  t.ok(st.inode > 0);
  t.ok(st.flags.includes('Valid'));
  const ls = JSON.parse(ours([img, 'ls', '-l', '/', '--json'])) as { entries: Array<{ name: string }> };
  t.ok(ls.entries.some((e) => e.name === 'lost+found'));
});
