/**
 * `tunefs.ocfs2 -Q FORMAT` (op_query.c): the format's escapes (\a \b \t \n
 * \v \f \r) and its own conversions, with printf's "-" and width:
 *   %B block size    %T cluster size   %N node slots     %R root dir block
 *   %Y system dir    %P first cluster group              %V label   %U UUID
 *   %M compat        %H incompat (+ in-progress tunefs flags)       %O ro-compat
 * Feature words print as space-separated names, "None" when empty.
 * Any other conversion is refused, as tunefs.ocfs2 refuses C's own.
 */
import { featureNames, tunefsFlagNames } from '../constants';
import type { Superblock } from '../structs/superblock';
import { TunefsError } from './session';

const ESCAPES: Record<string, string> = { a: '\x07', b: '\x08', t: '\t', n: '\n', v: '\x0b', f: '\x0c', r: '\r' };

function processEscapes(fmt: string): string {
  return fmt.replace(/\\(.)/gs, (m, c: string) => ESCAPES[c] ?? m);
}

export function queryFormat(fmt: string, sb: Superblock): string {
  const r = sb.raw;
  const flags = (names: string[]): string => (names.length ? names.join(' ') : 'None');
  const values: Record<string, () => string> = {
    B: () => String(sb.blocksize),
    T: () => String(sb.clustersize),
    N: () => String(r.s_max_slots),
    R: () => String(r.s_root_blkno),
    Y: () => String(r.s_system_dir_blkno),
    P: () => String(r.s_first_cluster_group),
    V: () => sb.label,
    U: () => sb.uuidHex,
    M: () => flags(featureNames(sb.compat, 0, 0)),
    H: () => flags([...featureNames(0, sb.incompat, 0), ...tunefsFlagNames(r.s_tunefs_flag)]),
    O: () => flags(featureNames(0, 0, sb.roCompat)),
  };
  const text = processEscapes(fmt);
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '%') { out += ch; continue; }
    const m = /^%(-?)(\d*)(.)/s.exec(text.slice(i));
    if (!m) throw new TunefsError(`unknown type specifier in the query format: "${fmt}"`);
    const [all, left, width, conv] = m;
    if (conv === '%' && !left && !width) { out += '%'; i += 1; continue; }
    const get = values[conv!];
    if (!get) throw new TunefsError(`unknown type specifier in the query format: "${fmt}"`);
    const v = get();
    const w = width ? Number(width) : 0;
    out += left ? v.padEnd(w) : v.padStart(w);
    i += all!.length - 1;
  }
  return out;
}
