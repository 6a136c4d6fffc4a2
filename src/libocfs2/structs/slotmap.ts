/**
 * The slot map (contents of the slot_map system file).  Which node holds
 * which slot; a slot selects the journal, local alloc, truncate log, orphan
 * dir, allocators and local quota files a mounted node uses.
 *
 * Old format: le16 sm_slots[max_slots], 0xFFFF = empty, else the node number.
 * Extended format (incompat EXTENDED_SLOT_MAP): 8-byte ocfs2_extended_slot
 * entries {es_valid u8, reserved[3], es_node_num le32} (ocfs2_fs.h's "0x10"
 * comment is wrong: the struct is 8 bytes).  The file holds max_slots
 * entries; the rest of its blocks is zero.
 */
import { Ocfs2CorruptError } from '../errors';
import { defineStruct } from '../struct';
import { OCFS2_INVALID_SLOT_U16 } from '../constants';

export const OldSlot = defineStruct('ocfs2_slot_map.sm_slots[]', 2, 'le', [
  { name: 'sm_slot', offset: 0, type: 'u16' },
] as const);

export const ExtendedSlot = defineStruct('ocfs2_extended_slot', 8, 'le', [
  { name: 'es_valid', offset: 0x00, type: 'u8' },
  { name: 'es_reserved1', offset: 0x01, type: 'bytes', size: 3 },
  { name: 'es_node_num', offset: 0x04, type: 'u32' },
] as const);

/** Node number per slot, null where the slot is empty. */
export type SlotMap = Array<number | null>;

/** Bytes the slot map of `maxSlots` slots takes in the given format. */
export function slotMapBytes(maxSlots: number, extended: boolean): number {
  return maxSlots * (extended ? ExtendedSlot.size : OldSlot.size);
}

/**
 * Decode the slot map from the slot_map file contents.  `blkno` (the
 * slot_map inode) is only used to name the file in errors.
 */
export function decodeSlotMap(data: Buffer, maxSlots: number, extended: boolean, blkno = 0): SlotMap {
  const need = slotMapBytes(maxSlots, extended);
  if (data.length < need) {
    throw new Ocfs2CorruptError(blkno, 'slot map too short', `${data.length} bytes, need ${need} for ${maxSlots} slots`);
  }
  const out: SlotMap = [];
  for (let i = 0; i < maxSlots; i++) {
    if (extended) {
      const s = ExtendedSlot.decode(data, i * ExtendedSlot.size);
      out.push(s.es_valid ? s.es_node_num : null);
    } else {
      const v = OldSlot.decode(data, i * OldSlot.size).sm_slot;
      out.push(v === OCFS2_INVALID_SLOT_U16 ? null : v);
    }
  }
  return out;
}

/**
 * Encode into `into` (default: a zeroed buffer of `size` bytes, at least the
 * map's own size).  Empty extended slots are written all zero, as the kernel
 * does; empty old slots are 0xFFFF.
 */
export function encodeSlotMap(map: SlotMap, extended: boolean, size = slotMapBytes(map.length, extended), into?: Buffer): Buffer {
  const buf = into ?? Buffer.alloc(Math.max(size, slotMapBytes(map.length, extended)));
  map.forEach((node, i) => {
    if (extended) {
      ExtendedSlot.encode({ es_valid: node === null ? 0 : 1, es_reserved1: Buffer.alloc(3), es_node_num: node ?? 0 },
        buf, i * ExtendedSlot.size);
    } else {
      OldSlot.encode({ sm_slot: node === null ? OCFS2_INVALID_SLOT_U16 : node }, buf, i * OldSlot.size);
    }
  });
  return buf;
}

/** The slot a node holds, or -1. */
export function slotOfNode(map: SlotMap, node: number): number {
  return map.findIndex((n) => n === node);
}
