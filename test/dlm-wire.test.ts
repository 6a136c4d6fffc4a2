import t from 'tap';
import * as W from '../src/cluster/dlm/wire';
import type { StructDef } from '../src/libocfs2/struct';

// sizes from dlmcommon.h (the comments there, and sizeof arithmetic of each struct)
const SIZES: [string, StructDef<Record<string, unknown>>, number][] = [
  ['dlm_master_request', W.DlmMasterRequest as unknown as StructDef<Record<string, unknown>>, 72],
  ['dlm_assert_master', W.DlmAssertMaster as unknown as StructDef<Record<string, unknown>>, 72],
  ['dlm_migrate_request', W.DlmMigrateRequest as unknown as StructDef<Record<string, unknown>>, 72],
  ['dlm_master_requery', W.DlmMasterRequery as unknown as StructDef<Record<string, unknown>>, 72],
  ['dlm_migratable_lockres', W.DlmMigratableLockres as unknown as StructDef<Record<string, unknown>>, 112],
  ['dlm_migratable_lock', W.DlmMigratableLock as unknown as StructDef<Record<string, unknown>>, 16],
  ['dlm_create_lock', W.DlmCreateLock as unknown as StructDef<Record<string, unknown>>, 80],
  ['dlm_unlock_lock', W.DlmUnlockLock as unknown as StructDef<Record<string, unknown>>, 80],
  ['dlm_proxy_ast', W.DlmProxyAst as unknown as StructDef<Record<string, unknown>>, 80],
  ['dlm_query_join_request', W.DlmQueryJoinRequest as unknown as StructDef<Record<string, unknown>>, 104],
  ['dlm_assert_joined', W.DlmAssertJoined as unknown as StructDef<Record<string, unknown>>, 68],
  ['dlm_query_region', W.DlmQueryRegion as unknown as StructDef<Record<string, unknown>>, 1092],
  ['dlm_node_info', W.DlmNodeInfo as unknown as StructDef<Record<string, unknown>>, 8],
  ['dlm_query_nodeinfo', W.DlmQueryNodeinfo as unknown as StructDef<Record<string, unknown>>, 2108],
  ['dlm_exit_domain', W.DlmExitDomain as unknown as StructDef<Record<string, unknown>>, 4],
  ['dlm_lock_request', W.DlmLockRequest as unknown as StructDef<Record<string, unknown>>, 8],
  ['dlm_reco_data_done', W.DlmRecoDataDone as unknown as StructDef<Record<string, unknown>>, 72],
  ['dlm_finalize_reco', W.DlmFinalizeReco as unknown as StructDef<Record<string, unknown>>, 8],
  ['dlm_deref_lockres', W.DlmDerefLockres as unknown as StructDef<Record<string, unknown>>, 72],
];

t.test('struct sizes match dlmcommon.h', async (t) => {
  for (const [name, s, size] of SIZES) t.equal(s.size, size, name);
  t.equal(W.DLM_MIG_LOCKRES_MAX_LEN, 112 + 240 * 16, 'DLM_MIG_LOCKRES_MAX_LEN');
  t.equal(W.DLM_CONVERT_LOCK_MAX_LEN, 144);
  t.equal(W.DLM_UNLOCK_LOCK_MAX_LEN, 144);
  t.equal(W.DLM_PROXY_AST_MAX_LEN, 144);
  // 4080 - DLM_MIG_LOCKRES_MAX_LEN = DLM_MIG_LOCKRES_RESERVED (128 in the comment, with 4080 payload)
  t.equal(4080 - W.DLM_MIG_LOCKRES_MAX_LEN, 128);
  for (const [t2, len] of Object.entries(W.DLM_MAX_LEN)) t.ok(len <= 4072, `max_len of ${t2} fits o2net`);
});

t.test('message numbers, protocol, constants', async (t) => {
  t.equal(W.DlmMsg.MASTER_REQUEST, 500);
  t.equal(W.DlmMsg.FINALIZE_RECO, 518);
  t.equal(W.DlmMsg.QUERY_REGION, 519);
  t.equal(W.DlmMsg.QUERY_NODEINFO, 520);
  t.equal(W.DlmMsg.BEGIN_EXIT_DOMAIN, 521);
  t.equal(W.DlmMsg.DEREF_LOCKRES_DONE, 522);
  t.same(W.DLM_PROTOCOL, { major: 1, minor: 3 });
  t.same(W.FS_PROTOCOL, { major: 1, minor: 0 });
  t.equal(W.DLM_MOD_KEY, 0x666c6172);
  t.equal(W.DlmStatus.NOTQUEUED, 21);
  t.equal(W.DlmStatus.RECOVERING, 39);
  t.equal(W.DlmStatus.MIGRATING, 40);
  t.equal(W.LKM.GET_LVB, 0x40000000);
  t.equal(W.LKM.RECOVERY, 0x80000000);
});

function rnd(n: number): number { return Math.floor(Math.random() * n); }

t.test('every struct round-trips random values', async (t) => {
  for (const [name, s] of SIZES) {
    for (let i = 0; i < 20; i++) {
      const v: Record<string, unknown> = {};
      for (const f of s.fields) {
        if (f.type === 'bytes') { const b = Buffer.alloc(f.size); for (let j = 0; j < f.size; j++) b[j] = rnd(256); v[f.name] = b; }
        else if (f.type === 'u64n') v[f.name] = BigInt(rnd(2 ** 31)) << 33n | BigInt(rnd(2 ** 31));
        else if (f.type === 'u8') v[f.name] = rnd(256);
        else if (f.type === 'i8') v[f.name] = rnd(256) - 128;
        else if (f.type === 'u16') v[f.name] = rnd(65536);
        else if (f.type === 'u32') v[f.name] = rnd(2 ** 32);
        else v[f.name] = rnd(1000);
      }
      const buf = s.encode(v);
      t.equal(buf.length, s.size);
      t.same(s.decode(buf), v, `${name} #${i}`);
    }
  }
});

t.test('byte positions that the kernel reads', async (t) => {
  const c = W.DlmCreateLock.encode({ cookie: 0x0102030405060708n, flags: 0x11223344, pad1: 0, node_idx: 9, requested_type: -1, namelen: 3, name: W.nameField(Buffer.from('abc')) });
  t.equal(c.readBigUInt64BE(0), 0x0102030405060708n);
  t.equal(c.readUInt32BE(8), 0x11223344);
  t.equal(c[13], 9);
  t.equal(c[14], 0xff);
  t.equal(c[15], 3);
  t.equal(c.toString('latin1', 16, 19), 'abc');
  const p = W.DlmProxyAst.encode({ cookie: 1n, flags: 0, node_idx: 4, type: 1, blocked_type: 5, namelen: 2, name: W.nameField(Buffer.from('zz')) });
  t.same([p[12], p[13], p[14], p[15]], [4, 1, 5, 2]);
  const u = W.DlmUnlockLock.encode({ cookie: 1n, flags: 0, pad1: 0, node_idx: 7, namelen: 2, name: W.nameField(Buffer.from('zz')) });
  t.same([u[14], u[15]], [7, 2]);
  const d = W.DlmDerefLockres.encode({ pad1: 0, pad2: 0, node_idx: 6, namelen: 1, name: W.nameField(Buffer.from('q')) });
  t.same([d[6], d[7], d[8]], [6, 1, 0x71]);
  // join response packing: big-endian bytes [code, dlm_minor, fs_minor, 0]
  const s = W.packJoinResponse(W.JoinCode.OK, 3, 0);
  const b = Buffer.alloc(4); b.writeInt32BE(s);
  t.same([...b], [1, 3, 0, 0]);
  t.same(W.unpackJoinResponse(s), { code: 1, dlmMinor: 3, fsMinor: 0 });
  // node maps: bit n = byte[n>>3] & (1 << (n & 7))
  const nm = W.nodeMapEncode([0, 9, 254]);
  t.equal(nm.length, 32);
  t.same([nm[0], nm[1], nm[31]], [1, 2, 0x40]);
  t.same([...W.nodeMapDecode(nm)], [0, 9, 254]);
  // stack_o2cb: key = crc32_le(0, name)
  t.equal(W.domainKey('$RECOVERY'), W.domainKey('$RECOVERY'));
  t.not(W.domainKey('A'), W.domainKey('B'));
  t.equal(W.cookieNode(W.makeCookie(17, 5n)), 17);
});

t.test('dlm_lock_compatible table', async (t) => {
  const { NL, PR, EX } = W.LkmMode;
  t.ok(W.lockCompatible(NL, EX)); t.ok(W.lockCompatible(EX, NL)); t.ok(W.lockCompatible(PR, PR));
  t.notOk(W.lockCompatible(PR, EX)); t.notOk(W.lockCompatible(EX, PR)); t.notOk(W.lockCompatible(EX, EX));
});
