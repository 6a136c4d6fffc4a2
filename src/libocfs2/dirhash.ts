/**
 * Name hashes used on disk:
 *
 *  - the indexed-directory hash (kernel fs/ocfs2/dir.c `ocfs2_dx_dir_name_hash`):
 *    the ext3 "TEA" hash: the name is cut into 16-byte chunks, each packed into
 *    four u32 words by `str2hashbuf` and mixed into a 4-word state by
 *    `TEA_transform`; the state starts as {s_dx_seed[0..2], s_uuid_hash}
 *    (super.c: osb_dx_seed[3] = s_uuid_hash).  major = state[0], minor =
 *    state[1]; "." and ".." hash to (0, 0).
 *  - the mapping of a hash to a dx leaf block (`ocfs2_dx_dir_lookup`): the dx
 *    tree's extents are keyed by the major hash used as a cluster position;
 *    the block inside the cluster is `minor & (blocks_per_cluster - 1)`.
 *  - the xattr name hash (fs/ocfs2/xattr.c `ocfs2_xattr_name_hash`): a
 *    rotate-xor over the stored name (without its prefix), seeded with
 *    s_uuid_hash; and `ocfs2_xattr_uuid_hash`, the same loop over the 16 uuid
 *    bytes from 0, which gives s_uuid_hash itself.
 *
 * Signedness: the kernel reads name bytes through `const char *`.  On x86 with
 * kernels before 6.2 `char` is signed, so bytes >= 0x80 are sign-extended
 * before they are added/xored; kernels from 6.2 on are built with
 * -funsigned-char.  The reference images (kernel 6.1, x86-64) use signed
 * bytes, and so does ocfs2-tools on x86, so signed is the default here; pass
 * `{ unsignedChar: true }` for the other behaviour.  ASCII names hash the same
 * either way.  The uuid hash reads `unsigned char` and never sign-extends.
 */

export interface DxHashSeed {
  /** Superblock s_dx_seed[0..2]. */
  readonly dxSeed: readonly [number, number, number];
  /** Superblock s_uuid_hash (the fourth seed word). */
  readonly uuidHash: number;
}

export interface DxHash {
  major: number;
  minor: number;
}

export interface HashCharOptions {
  /** Treat name bytes as unsigned char (kernels >= 6.2); default signed (x86, <= 6.1). */
  readonly unsignedChar?: boolean;
}

const TEA_DELTA = 0x9e3779b9;

/** Byte value as the kernel sees it through `char` (as a u32 bit pattern). */
function charValue(b: number, unsignedChar: boolean): number {
  return unsignedChar || b < 0x80 ? b : (b - 0x100) >>> 0;
}

/** ext3's TEA_transform: 16 rounds over buf[0..1] keyed by in[0..3]. */
function teaTransform(buf: Uint32Array, inp: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0]!;
  let b1 = buf[1]!;
  const a = inp[0]!, b = inp[1]!, c = inp[2]!, d = inp[3]!;
  for (let n = 0; n < 16; n++) {
    sum = (sum + TEA_DELTA) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) >>> 0) ^ ((b1 + sum) >>> 0) ^ (((b1 >>> 5) + b) >>> 0))) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) >>> 0) ^ ((b0 + sum) >>> 0) ^ (((b0 >>> 5) + d) >>> 0))) >>> 0;
  }
  buf[0] = (buf[0]! + b0) >>> 0;
  buf[1] = (buf[1]! + b1) >>> 0;
}

/**
 * ext3's str2hashbuf: pack up to 4*num bytes of msg[off..] into num words.
 * `len` is the number of bytes remaining in the whole name (it also forms the
 * pad word, so it is taken before clamping to 4*num).
 */
function str2hashbuf(msg: Buffer, off: number, len: number, out: Uint32Array, num: number, unsignedChar: boolean): void {
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  const n = Math.min(len, num * 4);
  let o = 0;
  for (let i = 0; i < n; i++) {
    if (i % 4 === 0) val = pad;
    val = (charValue(msg[off + i]!, unsignedChar) + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[o++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[o++] = val;
  while (--num >= 0) out[o++] = pad;
}

/** The indexed-directory hash of a name (raw bytes, as stored in the dirent). */
export function dxNameHash(name: Buffer, seed: DxHashSeed, opts: HashCharOptions = {}): DxHash {
  const len0 = name.length;
  if ((len0 === 1 && name[0] === 0x2e) || (len0 === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
    return { major: 0, minor: 0 };
  }
  const unsignedChar = opts.unsignedChar === true;
  const buf = new Uint32Array([seed.dxSeed[0] >>> 0, seed.dxSeed[1] >>> 0, seed.dxSeed[2] >>> 0, seed.uuidHash >>> 0]);
  const inp = new Uint32Array(8);
  let len = len0;
  let p = 0;
  while (len > 0) {
    str2hashbuf(name, p, len, inp, 4, unsignedChar);
    teaTransform(buf, inp);
    len -= 16;
    p += 16;
  }
  return { major: buf[0]!, minor: buf[1]! };
}

/** Does the name contain a byte whose hash depends on char signedness? */
export function hashDependsOnCharSign(name: Buffer): boolean {
  return name.some((b) => b >= 0x80);
}

/**
 * Block index inside a dx cluster for a hash (`ocfs2_dx_dir_hash_idx`):
 * minor & osb_dx_mask, osb_dx_mask = (1 << (cbits - bbits)) - 1.
 */
export function dxHashBlockIndex(minor: number, clusterBits: number, blockBits: number): number {
  const mask = (1 << (clusterBits - blockBits)) - 1;
  return (minor >>> 0) & mask;
}

/** A leaf extent record of the dx tree (cpos in clusters = major hash space). */
export interface DxExtent {
  readonly cpos: number;
  readonly clusters: number;
  readonly blkno: number;
}

/**
 * Which dx leaf block holds a hash (`ocfs2_dx_dir_lookup` +
 * `ocfs2_dx_dir_lookup_rec`), given the leaf-level extent records of the dx
 * tree (depth 0 list in the root, or the records of the extent block that
 * `ocfs2_find_leaf` reaches for major).  The last record with cpos <= major
 * is taken; a major beyond its end uses its last cluster.  Returns undefined
 * when no record starts at or below major (the kernel reports corruption).
 */
export function dxLeafBlockFor(
  recs: readonly DxExtent[], hash: DxHash, clusterBits: number, blockBits: number,
): { blkno: number; cpos: number } | undefined {
  const major = hash.major >>> 0;
  let rec: DxExtent | undefined;
  for (let i = recs.length - 1; i >= 0; i--) {
    if (recs[i]!.cpos <= major) { rec = recs[i]; break; }
  }
  if (!rec || rec.clusters <= 0) return undefined;
  const bpc = 2 ** (clusterBits - blockBits);
  let cpos: number;
  let blkno = rec.blkno;
  if (major >= rec.cpos + rec.clusters) {
    blkno += (rec.clusters - 1) * bpc;
    cpos = rec.cpos + rec.clusters - 1;
  } else {
    blkno += (major - rec.cpos) * bpc;
    cpos = major;
  }
  blkno += dxHashBlockIndex(hash.minor, clusterBits, blockBits);
  return { blkno, cpos };
}

/** OCFS2_HASH_SHIFT */
const HASH_SHIFT = 5;

function rotXor(hash: number, v: number): number {
  return (((hash << HASH_SHIFT) >>> 0) ^ (hash >>> (32 - HASH_SHIFT)) ^ v) >>> 0;
}

/**
 * `ocfs2_xattr_name_hash`: hash of an xattr's stored name (the part after the
 * prefix, xe_name_len bytes), seeded with the superblock's s_uuid_hash.
 */
export function xattrNameHash(name: Buffer, uuidHash: number, opts: HashCharOptions = {}): number {
  const unsignedChar = opts.unsignedChar === true;
  let h = uuidHash >>> 0;
  for (const b of name) h = rotXor(h, charValue(b, unsignedChar));
  return h;
}

/** `ocfs2_xattr_uuid_hash`: s_uuid_hash from the 16-byte volume uuid (unsigned bytes). */
export function uuidHash(uuid: Buffer): number {
  let h = 0;
  for (const b of uuid) h = rotXor(h, b);
  return h;
}
