/**
 * o2net wire structures: sizes and offsets as in tcp.h / tcp_internal.h,
 * big-endian byte order checked against hand-written bytes, round trips, and
 * the stream reassembler's framing checks.
 */
import t from 'tap';
import {
  O2NetHandshake, O2NetMsg, O2NET_MAX_PAYLOAD_BYTES, O2NET_PROTOCOL_VERSION, O2NetSysErr,
  encodeHandshake, encodeFrame, checkHandshake, FrameReader, O2NetFramingError, O2NetError,
  O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC, O2NET_MSG_KEEP_RESP_MAGIC, SYS_ERR_CODE,
} from '../src/cluster/net/wire';

t.test('struct o2net_handshake: 32 bytes, big-endian', async (t) => {
  t.equal(O2NetHandshake.size, 32);
  t.same(O2NetHandshake.fields.map((f) => [f.name, f.offset]), [
    ['protocol_version', 0], ['connector_id', 8], ['o2hb_heartbeat_timeout_ms', 16],
    ['o2net_idle_timeout_ms', 20], ['o2net_keepalive_delay_ms', 24], ['o2net_reconnect_delay_ms', 28],
  ]);
  const b = encodeHandshake({ heartbeatTimeoutMs: 60000, idleTimeoutMs: 30000, keepaliveDelayMs: 2000, reconnectDelayMs: 2000 });
  t.equal(b.toString('hex'),
    '000000000000000b' + '0000000000000001' + '0000ea60' + '00007530' + '000007d0' + '000007d0',
    'the kernel defaults on the wire');
  const d = O2NetHandshake.decode(b);
  t.equal(d.protocol_version, 11n);
  t.same(O2NetHandshake.decode(O2NetHandshake.encode(d)), d, 'round trip');
  t.equal(O2NET_PROTOCOL_VERSION, 11n);
});

t.test('struct o2net_msg: 24 bytes, big-endian, magics', async (t) => {
  t.equal(O2NetMsg.size, 24);
  t.equal(O2NET_MAX_PAYLOAD_BYTES, 4072, '4096 - sizeof(struct o2net_msg)');
  t.same(O2NetMsg.fields.map((f) => [f.name, f.offset]), [
    ['magic', 0], ['data_len', 2], ['msg_type', 4], ['pad1', 6], ['sys_status', 8], ['status', 12], ['key', 16], ['msg_num', 20],
  ]);
  t.same([O2NET_MSG_MAGIC, O2NET_MSG_STATUS_MAGIC, O2NET_MSG_KEEP_REQ_MAGIC, O2NET_MSG_KEEP_RESP_MAGIC], [0xfa55, 0xfa56, 0xfa57, 0xfa58]);
  const f = encodeFrame({ magic: O2NET_MSG_STATUS_MAGIC, msgType: 502, key: 0x666c6172, msgNum: 9, sysStatus: O2NetSysErr.NO_HNDLR, status: -22 }, Buffer.from([1, 2, 3]));
  t.equal(f.subarray(0, 24).toString('hex'), 'fa56' + '0003' + '01f6' + '0000' + '00000001' + 'ffffffea' + '666c6172' + '00000009');
  t.same([...f.subarray(24)], [1, 2, 3]);
  const d = O2NetMsg.decode(f);
  t.equal(d.status, -22, 'status is a signed int');
  t.same(O2NetMsg.decode(O2NetMsg.encode(d)), d, 'round trip');
  t.throws(() => encodeFrame({ magic: O2NET_MSG_MAGIC }, Buffer.alloc(4073)), O2NetError);
  t.same([SYS_ERR_CODE[1], SYS_ERR_CODE[2], SYS_ERR_CODE[3]], ['ENOPROTOOPT', 'EOVERFLOW', 'EHOSTDOWN']);
  t.equal(new O2NetError('EHOSTDOWN', 'x').errno, 112);
});

t.test('o2net_check_handshake', async (t) => {
  const local = { heartbeatTimeoutMs: 60000, idleTimeoutMs: 30000, keepaliveDelayMs: 2000, reconnectDelayMs: 2000 };
  const dec = (p: typeof local, v?: bigint): ReturnType<typeof O2NetHandshake.decode> => O2NetHandshake.decode(encodeHandshake(p, v));
  t.equal(checkHandshake(dec(local), local), null);
  t.equal(checkHandshake(dec({ ...local, reconnectDelayMs: 5000 }), local), null, 'reconnect delay is not compared');
  t.match(checkHandshake(dec(local, 10n), local), /Advertised net protocol version 10 but 11 is required/);
  t.match(checkHandshake(dec({ ...local, idleTimeoutMs: 10000 }), local), /network idle timeout of 10000 ms, but we use 30000 ms/);
  t.match(checkHandshake(dec({ ...local, keepaliveDelayMs: 5000 }), local), /keepalive delay of 5000 ms, but we use 2000 ms/);
  t.match(checkHandshake(dec({ ...local, heartbeatTimeoutMs: 20000 }), local), /heartbeat timeout of 20000 ms, but we use 60000 ms/);
});

t.test('FrameReader', async (t) => {
  const hs = encodeHandshake({ heartbeatTimeoutMs: 1, idleTimeoutMs: 3, keepaliveDelayMs: 2, reconnectDelayMs: 4 });
  const frames = [
    encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: 1, key: 2, msgNum: 3 }, Buffer.alloc(100, 9)),
    encodeFrame({ magic: O2NET_MSG_KEEP_REQ_MAGIC }),
    encodeFrame({ magic: O2NET_MSG_MAGIC, msgType: 5 }, Buffer.alloc(4072, 1)),
  ];
  const all = Buffer.concat([hs, ...frames]);
  // byte by byte: the same frames come out
  const r = new FrameReader();
  const got: number[] = [];
  for (let i = 0; i < all.length; i++) {
    r.push(all.subarray(i, i + 1));
    if (!r.handshakeReceived) { const h = r.takeHandshake(); if (h) t.equal(h.o2net_idle_timeout_ms, 3); continue; }
    for (let f = r.takeFrame(); f; f = r.takeFrame()) got.push(f.hdr.data_len);
  }
  t.same(got, [100, 0, 4072]);
  t.equal(r.pending, 0);

  const over = new FrameReader({ expectHandshake: false });
  const h = Buffer.alloc(24);
  h.writeUInt16BE(O2NET_MSG_MAGIC, 0);
  h.writeUInt16BE(4073, 2);
  over.push(h);
  t.throws(() => over.takeFrame(), O2NetFramingError, 'data_len over the maximum fails at the header');
  const bad = new FrameReader({ expectHandshake: false });
  bad.push(encodeFrame({ magic: 0xbeef }));
  t.throws(() => bad.takeFrame(), { name: 'O2NetFramingError', message: /bad magic 0xbeef/ });
  const trunc = new FrameReader({ expectHandshake: false });
  trunc.push(encodeFrame({ magic: O2NET_MSG_MAGIC }, Buffer.alloc(50)).subarray(0, 60));
  t.equal(trunc.takeFrame(), null, 'a truncated frame waits for more');
  t.equal(trunc.pending, 60);
});
