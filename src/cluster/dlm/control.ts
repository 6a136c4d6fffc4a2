/**
 * The DLM's part of the node's control socket: join/leave domains, take and
 * drop locks (held for the life of the client connection, like a process's
 * locks in dlmfs), the lock dump of `cluster locks`, and the torture run.
 */
import type { ControlPeer, ControlReply, ControlRequest } from '../stack';
import { O2Dlm, DlmLockHandle, DlmError } from './dlm';
import { LkmMode, LockMode } from './wire';
import { runTorture, readCounters } from './torture';

const MODES: Record<string, LockMode> = { NL: LkmMode.NL, PR: LkmMode.PR, EX: LkmMode.EX };

function mode(v: unknown): LockMode {
  const m = MODES[String(v).toUpperCase()];
  if (m === undefined) throw Object.assign(new Error(`bad lock mode '${String(v)}' (NL, PR or EX)`), { code: 'EINVAL' });
  return m;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw Object.assign(new Error(`${what} required`), { code: 'EINVAL' });
  return v;
}

function errReply(e: unknown): ControlReply {
  const err = e as NodeJS.ErrnoException;
  return { ok: false, error: err.message, code: err.code, status: e instanceof DlmError ? e.status : undefined, errno: e instanceof DlmError ? e.errno : undefined };
}

export class DlmControl {
  private readonly held = new Map<number, DlmLockHandle>();
  private nextId = 1;
  constructor(private readonly dlm: O2Dlm) {}

  /** null when the op is not a DLM op */
  async handle(req: ControlRequest, peer: ControlPeer): Promise<ControlReply | null> {
    try {
      switch (req.op) {
        case 'dlm-join': {
          const d = await this.dlm.register(str(req.domain, 'domain'));
          return { ok: true, domain: d.name, nodes: [...d.domainMap].sort((a, b) => a - b), dlmProto: `${d.dlmProto.major}.${d.dlmProto.minor}` };
        }
        case 'dlm-leave': {
          const d = this.dlm.domains.get(str(req.domain, 'domain'));
          if (!d) return { ok: false, error: `not in domain ${String(req.domain)}`, code: 'ENOENT' };
          await d.unregister();
          return { ok: true };
        }
        case 'dlm-lock': {
          const d = this.domain(req.domain);
          const h = await d.lock(str(req.name, 'name'), mode(req.mode), { noqueue: req.noqueue === true, valblk: req.valblk === true });
          const id = this.nextId++;
          this.held.set(id, h);
          peer.onClose(() => { if (this.held.delete(id)) void h.unlock().catch(() => undefined); });
          return { ok: true, id, mode: req.mode, lvb: h.lvb.toString('hex') };
        }
        case 'dlm-convert': {
          const h = this.handleOf(req.id);
          if (typeof req.lvb === 'string') Buffer.from(req.lvb, 'hex').copy(h.lvb);
          await h.convert(mode(req.mode), { noqueue: req.noqueue === true, valblk: req.valblk === true });
          return { ok: true, lvb: h.lvb.toString('hex') };
        }
        case 'dlm-unlock': {
          const h = this.handleOf(req.id);
          if (typeof req.lvb === 'string') Buffer.from(req.lvb, 'hex').copy(h.lvb);
          const st = req.cancel === true ? await h.cancel() : await h.unlock({ valblk: req.valblk === true });
          if (req.cancel !== true) this.held.delete(Number(req.id));
          return { ok: true, status: st };
        }
        case 'dlm-locks':
          return { ok: true, domains: this.dlm.status() as unknown as Record<string, unknown>[] };
        case 'dlm-torture': {
          const d = this.domain(req.domain);
          const names = Array.isArray(req.names) ? req.names.map(String) : [];
          const r = await runTorture(d, { names, durationMs: Number(req.durationMs ?? 5000), workers: Number(req.workers ?? 4), dir: str(req.dir, 'dir'), seed: req.seed === undefined ? undefined : Number(req.seed) });
          return { ok: true, result: r as unknown as Record<string, unknown> };
        }
        case 'dlm-counters': {
          const d = this.domain(req.domain);
          return { ok: true, counters: await readCounters(d, Array.isArray(req.names) ? req.names.map(String) : []) };
        }
        default:
          return null;
      }
    } catch (e) {
      return errReply(e);
    }
  }

  private domain(v: unknown): import('./dlm').DlmDomain {
    const d = this.dlm.domains.get(str(v, 'domain'));
    if (!d) throw Object.assign(new Error(`not in domain ${String(v)}`), { code: 'ENOENT' });
    return d;
  }

  private handleOf(v: unknown): DlmLockHandle {
    const h = this.held.get(Number(v));
    if (!h) throw Object.assign(new Error(`no lock with id ${String(v)}`), { code: 'ENOENT' });
    return h;
  }
}
