import t from 'tap';
import { defineStruct, StructLayoutError } from '../src/libocfs2/struct';
import { crc32ieee, crc32c } from '../src/libocfs2/crc32';

t.test('field table round trip, both endians', async (t) => {
  for (const endian of ['le', 'be'] as const) {
    const S = defineStruct('demo', 24, endian, [
      { name: 'a', offset: 0, type: 'u16' },
      { name: 'b', offset: 2, type: 'u16' },
      { name: 'c', offset: 4, type: 'u32' },
      { name: 'd', offset: 8, type: 'u64' },
      { name: 'e', offset: 16, type: 'bytes', size: 4 },
      { name: 'f', offset: 20, type: 'i32' },
    ] as const);
    const v = { a: 0xbeef, b: 1, c: 0xdeadbeef, d: 2 ** 40 + 5, e: Buffer.from('abcd'), f: -7 };
    const buf = S.encode(v);
    t.equal(buf.length, 24);
    t.same(S.decode(buf), v);
    t.equal(endian === 'le' ? buf.readUInt16LE(0) : buf.readUInt16BE(0), 0xbeef);
    t.equal(S.offsetOf('d'), 8);
  }
});

t.test('layout errors are caught at definition', async (t) => {
  t.throws(() => defineStruct('bad', 4, 'le', [{ name: 'x', offset: 2, type: 'u32' }] as const), StructLayoutError);
  t.throws(() => defineStruct('bad', 8, 'le', [
    { name: 'x', offset: 0, type: 'u32' }, { name: 'y', offset: 2, type: 'u16' }] as const), StructLayoutError);
});

t.test('u64 beyond 2^53 is refused, u64n carries it', async (t) => {
  const S = defineStruct('big', 8, 'le', [{ name: 'x', offset: 0, type: 'u64' }] as const);
  const N = defineStruct('bign', 8, 'le', [{ name: 'x', offset: 0, type: 'u64n' }] as const);
  const b = Buffer.alloc(8, 0xff);
  t.throws(() => S.decode(b), StructLayoutError);
  t.equal(N.decode(b).x, 0xffffffffffffffffn);
});

t.test('crc32 known vectors', async (t) => {
  t.equal(crc32ieee(Buffer.from('123456789')), 0xcbf43926);
  // crc32c check value: ~crc32c(~0, "123456789") = 0xe3069283
  t.equal((~crc32c(0xffffffff, Buffer.from('123456789'))) >>> 0, 0xe3069283);
});
