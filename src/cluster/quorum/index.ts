/**
 * o2quo (fs/ocfs2/cluster/quorum.c): decides whether this node must fence
 * itself when heartbeat and network connectivity disagree.
 *
 * State: the set of heartbeating nodes (self included, from heartbeat
 * node-up/down), the set of connected nodes (self included: o2net's
 * start_listening calls conn_up for the local node) and per-node "holds" that
 * postpone a decision while a node is between heartbeat-up and connection-up
 * or after its connection was lost.  A decision runs once a lost connection
 * has been given O2NET_QUORUM_DELAY_MS for heartbeat to declare the node dead
 * (o2quo_hb_still_up) and no hold remains.
 */
export const O2NM_MAX_NODES = 255;

export interface QuorumInput {
  /** Node numbers heartbeating (self included). */
  heartbeating: ReadonlySet<number>;
  /** Node numbers connected (self included). */
  connected: ReadonlySet<number>;
  thisNode: number;
}

export interface QuorumDecision {
  fence: boolean;
  quorum: number;
  heartbeating: number;
  connected: number;
  lowestHeartbeating: number | null;
  lowestReachable: boolean;
  /** The kernel's log line for this outcome. */
  reason: string;
}

/** o2quo_make_decision as a pure function. */
export function makeQuorumDecision(input: QuorumInput): QuorumDecision {
  const hb = input.heartbeating.size;
  const conn = input.connected.size;
  let lowest: number | null = null;
  for (const n of input.heartbeating) if (lowest === null || n < lowest) lowest = n;
  const lowestReachable = lowest !== null && input.connected.has(lowest);
  const base = { heartbeating: hb, connected: conn, lowestHeartbeating: lowest, lowestReachable };
  const notFencing = (quorum: number): QuorumDecision => ({
    ...base, fence: false, quorum,
    reason: `not fencing this node, heartbeating: ${hb}, connected: ${conn}, lowest: ${lowest ?? O2NM_MAX_NODES} (${lowestReachable ? '' : 'un'}reachable)`,
  });

  // no decision unless we heartbeat ourselves and are not alone
  if (!input.heartbeating.has(input.thisNode) || hb === 1) return notFencing(0);

  if (hb & 1) {
    // odd: if we cannot talk to a majority we're hosed
    const quorum = (hb + 1) >> 1;
    if (conn < quorum) {
      return { ...base, fence: true, quorum, reason: `fencing this node because it is only connected to ${conn} nodes and ${quorum} is needed to make a quorum out of ${hb} heartbeating nodes` };
    }
    return notFencing(quorum);
  }
  // even: a half that can't reach the lowest-numbered heartbeating node loses
  const quorum = hb >> 1;
  if (conn < quorum) {
    return { ...base, fence: true, quorum, reason: `fencing this node because it is only connected to ${conn} nodes and ${quorum} is needed to make a quorum out of ${hb} heartbeating nodes` };
  }
  if (conn === quorum && !lowestReachable) {
    return { ...base, fence: true, quorum, reason: `fencing this node because it is connected to a half-quorum of ${quorum} out of ${hb} nodes which doesn't include the lowest active node ${lowest}` };
  }
  return notFencing(quorum);
}

export type FenceCallback = (reason: string) => void;

export interface O2QuoOptions {
  thisNode: number;
  /** The self-fence action (o2quo_fence_self); injectable so tests can observe it. */
  fence: FenceCallback;
  log?: (line: string) => void;
}

/** The o2quo state machine; o2net and heartbeat call the hooks as the kernel does. */
export class O2Quo {
  private readonly hb = new Set<number>();
  private readonly conn = new Set<number>();
  private readonly holds = new Set<number>();
  private pending = false;
  private fenced = false;
  private scheduled = false;
  readonly thisNode: number;
  private readonly fenceCb: FenceCallback;
  private readonly log: (line: string) => void;
  /** Every decision taken, newest last (for status and tests). */
  readonly decisions: QuorumDecision[] = [];

  constructor(opts: O2QuoOptions) {
    this.thisNode = opts.thisNode;
    this.fenceCb = opts.fence;
    this.log = opts.log ?? ((l) => process.stderr.write(`o2quo: ${l}\n`));
  }

  get heartbeating(): ReadonlySet<number> { return this.hb; }
  get connected(): ReadonlySet<number> { return this.conn; }
  get holdCount(): number { return this.holds.size; }
  get hasFenced(): boolean { return this.fenced; }

  private setHold(node: number): void { this.holds.add(node); }

  private clearHold(node: number): void {
    if (this.holds.delete(node) && this.holds.size === 0 && this.pending) {
      this.pending = false;
      this.scheduleDecision();
    }
  }

  private scheduleDecision(): void {
    // schedule_work: run outside the caller's context
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.makeDecision(); });
  }

  /** o2quo_make_decision on the current state. */
  makeDecision(): QuorumDecision {
    const d = makeQuorumDecision({ heartbeating: this.hb, connected: this.conn, thisNode: this.thisNode });
    this.decisions.push(d);
    this.log(d.reason);
    if (d.fence) this.fenceSelf(d.reason);
    return d;
  }

  /** o2quo_fence_self (also reached from a heartbeat write timeout). */
  fenceSelf(reason: string): void {
    if (this.fenced) return;
    this.fenced = true;
    this.fenceCb(reason);
  }

  /** o2quo_disk_timeout */
  diskTimeout(): void { this.fenceSelf('heartbeat write timeout'); }

  /** o2quo_hb_up: hold until the connection is known, unless already connected. */
  hbUp(node: number): void {
    if (this.hb.has(node)) return;
    this.hb.add(node);
    if (!this.conn.has(node)) this.setHold(node);
    else this.clearHold(node);
  }

  /** o2quo_hb_down: releases any hold this node had. */
  hbDown(node: number): void {
    if (!this.hb.delete(node)) return;
    this.clearHold(node);
  }

  /** o2quo_hb_still_up: after a lost connection, the node kept heartbeating. */
  hbStillUp(node: number): void {
    this.pending = true;
    this.clearHold(node);
    // holds.size was already 0 (hold dropped earlier by hb_down/conn_up): the
    // kernel's clear_hold only fires on the transition; nothing else to do.
  }

  /** o2quo_conn_up */
  connUp(node: number): void {
    if (this.conn.has(node)) return;
    this.conn.add(node);
    if (!this.hb.has(node)) this.setHold(node);
    else this.clearHold(node);
  }

  /** o2quo_conn_err: a hold while it still heartbeats, until still_up or hb_down. */
  connErr(node: number): void {
    if (this.conn.delete(node)) {
      if (this.hb.has(node)) this.setHold(node);
    }
  }
}
