/**
 * Mount lifecycle of src/fuse/binding.ts: SIGTERM/SIGINT unmount cleanly,
 * an external `fusermount -u` is noticed (and the server can exit), and
 * opTimeoutMs turns a slow operation into ETIMEDOUT.
 */
import t from 'tap';
import { startMemfs, run, mounted } from './fixtures/fuse-helpers';

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${sig} unmounts cleanly and exits 0`, async (t) => {
    const s = await startMemfs({});
    t.teardown(() => s.cleanup());
    t.ok(mounted(s.mnt), 'mounted');
    t.equal((await run('stat', ['-c', '%s', `${s.mnt}/coh`])).stdout.trim(), '10', 'serving');
    s.child.kill(sig);
    const e = await within(s.exited, 60_000, 'server exit');
    t.same(e, { code: 0, signal: null }, 'exit code 0, not killed by the signal');
    t.notOk(mounted(s.mnt), 'no longer mounted');
    t.match(s.stderr(), /memfs: destroy/, 'destroy ran before exit');
    t.equal((await run('stat', ['-c', '%s', `${s.mnt}/coh`])).code, 1, 'mountpoint is an empty directory again');
  });
}

t.test('external fusermount -u is detected; opTimeoutMs fails slow operations', async (t) => {
  const s = await startMemfs({ opTimeoutMs: 1000 }, { FUSE_MEMFS_SLOW_MS: '3000' });
  t.teardown(() => s.cleanup());

  const slow = await run('cat', [`${s.mnt}/slow`], { timeoutSec: 20 });
  t.not(slow.code, 0, 'slow read failed');
  t.match(slow.stderr, /Connection timed out/, 'with ETIMEDOUT');
  // the order of events, not a wall-clock bound: the read failed while its handler still slept
  t.notMatch(s.stderr(), /memfs: slow read done/, `failed after ${slow.ms} ms, before the operation finished`);
  // Let the abandoned 3 s handler finish before unmounting (wait for its event): an unmount
  // while it still runs has once left the session without its destroy callback (seen once in
  // ~10 runs; a late reply into the released request buffer is the suspect). That race is a
  // known open problem of opTimeoutMs, which the mount does not enable; this test checks the
  // two features separately.
  for (const end = Date.now() + 60_000; !/memfs: slow read done/.test(s.stderr());) {
    if (Date.now() > end) throw new Error('the slow handler never finished');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const r = await run('fusermount', ['-u', s.mnt], { timeoutSec: 10 });
  t.equal(r.code, 0, r.stderr);
  const ev = await within(s.unmounted, 60_000, 'unmounted event');
  t.same(ev, { external: true }, 'reported as external');
  const e = await within(s.exited, 60_000, 'server exit');
  t.same(e, { code: 0, signal: null }, 'server exits by itself (no native handle keeps it alive)');
  t.notOk(mounted(s.mnt));
});

t.test('an option libfuse rejects fails the mount and leaves no mount behind', async (t) => {
  await t.rejects(startMemfs({ options: ['no_such_fuse_option'] }), /unknown option|fuse_new failed/);
  const left = (await import('node:fs')).readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' fuse.'));
  t.notOk(left.some((l) => /fuse-binding-/.test(l)), 'no fuse-binding mount left');
});

t.test('options are validated one per element', async (t) => {
  const { FuseMount } = await import('../src/fuse/binding');
  await t.rejects(new FuseMount().mount('/nonexistent-mountpoint', { getattr: () => { throw new Error('unused'); } }, { options: ['ro,allow_other'] }),
    /invalid option/);
});
