// A worker thread that serves numbered requests for every file of the process: Parquet's row group encoding, NDJSON's lines.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';

/** What goes to the thread: the request, and memory moved there that comes back for reuse. */
interface WorkRequest<Q> {
  id: number;
  q: Q;
  give?: ArrayBuffer;
}

type WorkReply<R> = { id: number; given?: ArrayBuffer } & ({ r: R } | { error: string });

/** Buffers kept for reuse at most (Parquet: a row group's columns, 7.6 MB for events). */
const KEEP_RETURNED = 4;

/**
 * One thread, started on first use (or by start(), to boot while the caller reads): it keeps
 * the process alive only while it has work. The thread's module is JavaScript only in the built
 * package (dist/); from sources `available` is false and callers do the work themselves.
 */
export class WorkThread<Q, R> {
  readonly #url: URL;
  readonly #what: string;
  readonly available: boolean;
  #worker: Worker | undefined;
  #next = 0;
  /** Memory the thread is done with (see take()). */
  readonly #returned: ArrayBuffer[] = [];
  readonly #waiting = new Map<number, { resolve(r: R): void; reject(e: Error): void }>();

  /** `what` names the thread in errors: "the Parquet encoding thread". */
  constructor(url: URL, what: string) {
    this.#url = url;
    this.#what = what;
    this.available = existsSync(fileURLToPath(url));
  }

  /** Requests sent and not yet answered. */
  get busy(): number {
    return this.#waiting.size;
  }

  /**
   * A buffer of `bytes` that an earlier request gave and the thread sent back: reused, it
   * costs no page faults (fresh memory is mapped page by page as it is first written).
   */
  take(bytes: number): ArrayBuffer | undefined {
    const i = this.#returned.findIndex((b) => b.byteLength === bytes);
    return i < 0 ? undefined : this.#returned.splice(i, 1)[0];
  }

  /**
   * Sends a request; `give` (memory the request's arrays are views of) moves to the thread and
   * comes back for take(), `transfer` moves for good; other arrays are copied.
   */
  run(q: Q, give?: ArrayBuffer, transfer: ArrayBuffer[] = []): Promise<R> {
    const worker = this.#start();
    const id = this.#next++;
    const request: WorkRequest<Q> = give === undefined ? { id, q } : { id, q, give };
    const done = new Promise<R>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
    });
    worker.postMessage(request, give === undefined ? transfer : [give, ...transfer]);
    worker.ref();
    return done;
  }

  /** Boots the thread now (its module loads while the caller does other work). */
  start(): void {
    if (this.available) this.#start();
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(this.#url);
    worker.on('message', (m: WorkReply<R>) => {
      if (m.given !== undefined && this.#returned.length < KEEP_RETURNED)
        this.#returned.push(m.given);
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (this.#waiting.size === 0) worker.unref();
      if ('error' in m) w?.reject(new Error(`export: ${this.#what} failed: ${m.error}`));
      else w?.resolve(m.r);
    });
    const fail = (err: Error) => {
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
      this.#worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error(`export: ${this.#what} ended`)));
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}

/**
 * The thread's side: answers each request with `work`'s result and the buffers to move with
 * it; the request's `give` goes back with the reply.
 */
export function serveWork<Q, R>(work: (q: Q) => { r: R; transfer: ArrayBuffer[] }): void {
  const port = parentPort;
  if (port === null) throw new Error('a work thread module runs as a worker thread only');
  port.on('message', (m: WorkRequest<Q>) => {
    let reply: WorkReply<R>;
    let transfer: ArrayBuffer[] = [];
    try {
      const done = work(m.q);
      reply = { id: m.id, r: done.r };
      transfer = done.transfer;
    } catch (err) {
      reply = { id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    if (m.give !== undefined) {
      reply.given = m.give;
      transfer.push(m.give);
    }
    port.postMessage(reply, transfer);
  });
}
