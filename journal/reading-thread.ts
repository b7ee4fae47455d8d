// A second thread that reads a journal and posts its batches back: the replay's and the export's, each with its own scan.
//
// Both sides of one mechanism. The thread (threadSide) opens the reader on the main thread's
// fd, posts each batch's ArrayBuffer transferred, takes a credit before each post so that at
// most `inFlight` messages wait (bounded memory), reuses the buffers the main thread gives
// back, and ends with one message: the script's own end, or a failure. The main thread
// (ReadingThread) hands out those messages in order, turns a failure back into the error the
// thread caught (a JournalFault stays a JournalFault, a CtError keeps its code and exit), and
// gives the buffers and the credit back once a message is used.
import { parentPort, receiveMessageOnPort, Worker, workerData } from 'node:worker_threads';
import { CtError, type ExitCode } from '../common/errors.js';
import { JournalFault } from './fault.js';
import type { JournalReader } from './reader.js';

/** What the reading thread is given: the opened journal's fd is shared, not reopened. */
export interface ThreadData {
  path: string;
  fd: number;
  /** Messages the main thread has room for; the thread waits at 0 (bounded memory). */
  credits: Int32Array;
}

/** How a reading thread ends when it could not read to the end. */
export type ThreadFailure =
  | { kind: 'fault'; code: 'ECORRUPT' | 'EMODIFIED'; offset: number; why: string; atFrame: boolean }
  | { kind: 'error'; code: string; message: string; exit: ExitCode }
  | { kind: 'bug'; message: string };

/** The main thread's side: the messages of one reading thread over `reader`'s fd. */
export class ReadingThread<M extends { kind: string }> {
  readonly #worker: Worker;
  readonly #credits: Int32Array;
  readonly #path: string;
  /** Names the thread in errors, e.g. 'journal: the decoding thread'. */
  readonly #name: string;
  readonly #queue: (M | ThreadFailure)[] = [];
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  #exited = false;

  constructor(script: URL, reader: JournalReader, inFlight: number, name: string) {
    const fd = reader.fd;
    if (fd === undefined) throw new Error('journal: reader is closed');
    this.#path = reader.path;
    this.#name = name;
    this.#credits = new Int32Array(new SharedArrayBuffer(4));
    this.#credits[0] = inFlight;
    const data: ThreadData = { path: reader.path, fd, credits: this.#credits };
    this.#worker = new Worker(script, { workerData: data });
    this.#worker.on('message', (m: M | ThreadFailure) => {
      this.#queue.push(m);
      this.#wake?.();
    });
    this.#worker.on('error', (err) => {
      this.#failure = err;
      this.#wake?.();
    });
    this.#worker.on('exit', () => {
      this.#exited = true;
      this.#wake?.();
    });
  }

  /** The next message the thread posted; a failure it posted is thrown as what it caught. */
  async next(): Promise<M> {
    while (this.#queue.length === 0) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#exited) throw new Error(`${this.#name} ended without a result`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    const m = this.#queue.shift() as M | ThreadFailure;
    switch (m.kind) {
      case 'fault': {
        const f = m as Extract<ThreadFailure, { kind: 'fault' }>;
        throw new JournalFault(f.code, this.#path, f.offset, f.why, f.atFrame);
      }
      case 'error': {
        const e = m as Extract<ThreadFailure, { kind: 'error' }>;
        throw new CtError(e.code, e.message, { exit: e.exit });
      }
      case 'bug':
        throw new Error(
          `${this.#name} failed: ${(m as Extract<ThreadFailure, { kind: 'bug' }>).message}`,
        );
    }
    return m as M;
  }

  /** A message is used: its buffers (may be none) go back for reuse, and one more may come. */
  used(bufs: ArrayBuffer[]): void {
    if (bufs.length > 0) this.#worker.postMessage(bufs, bufs);
    Atomics.add(this.#credits, 0, 1);
    Atomics.notify(this.#credits, 0);
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

/** The reading thread's side; `minBytes` is the least a new buffer gets (room to be reused). */
export function threadSide<M extends { kind: string }>(minBytes: number) {
  const { path, fd, credits } = workerData as ThreadData;
  const port = parentPort;
  if (port === null) throw new Error('a reading thread runs as a worker thread only');
  const post = (m: M | ThreadFailure, transfer: ArrayBuffer[] = []) =>
    port.postMessage(m, transfer);
  // Buffers the main thread is done with come back and are reused: fresh memory for every batch
  // cost page faults that showed up as a tenth of the replay.
  const pool: ArrayBuffer[] = [];
  return {
    path,
    fd,
    post,
    /** A buffer of at least `bytes`: a returned one where one is large enough. */
    alloc(bytes: number): ArrayBuffer {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
        pool.push(...(m.message as ArrayBuffer[]));
      }
      const i = pool.findIndex((b) => b.byteLength >= bytes);
      return i >= 0
        ? (pool.splice(i, 1)[0] as ArrayBuffer)
        : new ArrayBuffer(Math.max(bytes, minBytes));
    },
    /** Waits for the main thread to have room for one more message (bounded memory). */
    takeCredit(): void {
      for (;;) {
        const now = Atomics.load(credits, 0);
        if (now > 0 && Atomics.compareExchange(credits, 0, now, now - 1) === now) return;
        if (now <= 0) Atomics.wait(credits, 0, now, 1000);
      }
    },
    /** Posts what stopped the reading, for the main thread to throw again. */
    fail(err: unknown): void {
      if (err instanceof JournalFault) {
        post({
          kind: 'fault',
          code: err.code as 'ECORRUPT' | 'EMODIFIED',
          offset: err.offset,
          why: err.why,
          atFrame: err.atFrame,
        });
      } else if (err instanceof CtError) {
        post({ kind: 'error', code: err.code, message: err.message, exit: err.exit });
      } else {
        const e = err as Error;
        post({ kind: 'bug', message: e?.stack ?? String(err) });
      }
    },
  };
}
