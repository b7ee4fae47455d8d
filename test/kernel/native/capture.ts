// The capture child (capture-child.ts) driven from a test: commands in, JSON lines out; the
// namespace it runs in comes from the one harness, test/helpers/netns.ts (makeNetns).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The part of tap's Test these helpers use. */
interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./capture-child.ts', import.meta.url));
const TS_LOADER = import.meta.resolve('@tapjs/typescript/import');

/** An event as the child prints it: a CtEvent with addresses as hex strings. */
export interface JsonTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  icmpType: number;
  icmpCode: number;
  icmpId: number;
}
export interface JsonEvent {
  type: number;
  family: number;
  proto: number;
  status: number;
  id: number;
  time: number;
  timeKernel: boolean;
  start?: number;
  tcpState?: number;
  mark?: number;
  zone?: number;
  counters?: { origPackets: number; origBytes: number; replyPackets: number; replyBytes: number };
  orig: JsonTuple;
  reply: JsonTuple;
}
// biome-ignore lint/suspicious/noExplicitAny: child lines are loosely typed JSON
export type Line = Record<string, any>;

type Waiter = { pred: (l: Line) => boolean; resolve: (l: Line) => void };

/** The capture child: `prefix` runs it (e.g. in a namespace or as another user). */
export class CaptureChild {
  readonly lines: Line[] = [];
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcessWithoutNullStreams;
  private waiters: Waiter[] = [];
  private stderr = '';

  constructor(t: Teardown, prefix: string[], options: object = {}) {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, TS_NODE_TRANSPILE_ONLY: '1' };
    const [cmd, ...args] = [
      ...prefix,
      process.execPath,
      `--import=${TS_LOADER}`,
      CHILD,
      JSON.stringify(options),
    ];
    this.proc = spawn(cmd as string, args, { cwd: ROOT, env });
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => resolve(code)));
    createInterface({ input: this.proc.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    t.teardown(async () => {
      if (this.proc.exitCode === null && this.proc.signalCode === null) {
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    });
  }

  /** The child's process id (the `prefix` commands exec it, so it is node's). */
  get pid(): number {
    return this.proc.pid as number;
  }

  get events(): JsonEvent[] {
    return this.lines.filter((l) => l.event).map((l) => l.event as JsonEvent);
  }

  send(command: string): void {
    this.proc.stdin.write(`${command}\n`);
  }

  /** The first line (already printed or still to come) that matches, or a rejection. */
  waitFor(pred: (l: Line) => boolean, what: string, ms = 20_000): Promise<Line> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const tail = this.lines.slice(-5).map((l) => JSON.stringify(l));
        reject(
          new Error(
            `timed out waiting for ${what}; last lines: ${tail.join('\n')}; stderr: ${this.stderr}`,
          ),
        );
      }, ms);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  waitForEvent(pred: (e: JsonEvent) => boolean, what: string, ms?: number): Promise<JsonEvent> {
    return this.waitFor((l) => l.event !== undefined && pred(l.event), what, ms).then(
      (l) => l.event as JsonEvent,
    );
  }

  get errorOutput(): string {
    return this.stderr;
  }
}
