/**
 * Allocation for the write path (issue 4).
 *
 *   const alloc = await Allocators.load(vol, slot);
 *   await tm.run(async (tx) => {
 *     const run = await alloc.claimClusters(tx, min, want, goal?);  // {start: cluster, count}; PosixError('ENOSPC')
 *     await alloc.freeClusters(tx, run);        // via truncate_log:NNNN (not reusable in this transaction)
 *     const ino = await alloc.claimInode(tx);   // {blkno, suballocSlot, suballocBit, suballocLoc} -> i_suballoc_*
 *     const eb = await alloc.claimMetaBlock(tx);// extent blocks, xattr blocks, dx roots/leaves -> h_suballoc_*
 *     await alloc.freeInode(tx, ino); await alloc.freeMetaBlock(tx, eb);  // also tx.forget(blkno)
 *   });
 *   unmount: tm.run(tx => alloc.flushTruncateLog(tx)); tm.run(tx => alloc.releaseLocalAlloc(tx));
 *   statfs(): {totalClusters, freeClusters}
 *
 * Allocators keeps no on-disk state in memory (it re-reads blocks through
 * the block layer, which returns pinned copies), only the local alloc
 * window size/state and per-transaction freed runs, so an aborted
 * transaction needs no cleanup.  Callers must not keep copies of allocator
 * blocks across calls.
 */
export { Allocators, type ClusterRun, type SubAlloc } from './allocators';
export { ChainAllocator, type BitClaim, type ClaimOptions } from './chain';
