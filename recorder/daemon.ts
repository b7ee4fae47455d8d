// -d: Node cannot fork, so ct-record starts itself again detached and waits until it records.
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { CtError, Exit, type ExitCode } from '../common/errors.js';

/** Set in the daemon's environment: the fd on which it reports readiness or its failure. */
export const DAEMON_ENV = 'CT_RECORD_DAEMON_FD';
/** How long the launcher waits for the daemon to say it records (a table dump is not waited for). */
export const READY_TIMEOUT_MS = 30_000;

/** One JSON line from the daemon to its launcher, then the channel is closed. */
export type DaemonReport =
  | { ready: true; pid: number; syslog?: string }
  | { ready: false; message: string; exit: number };

/**
 * The launcher's side: runs `argv` (this script and its options) detached — a new session, stdio
 * on /dev/null — with a pipe on fd 3, and resolves with the daemon's first report. The daemon
 * then lives on its own; a daemon that says nothing in time is killed (it would run unseen).
 */
export function launchDaemon(
  argv: readonly string[],
  timeoutMs = READY_TIMEOUT_MS,
): Promise<DaemonReport> {
  const [script, ...args] = argv;
  if (script === undefined) throw new Error('launchDaemon: no script');
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '3' },
  });
  const channel = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  return new Promise((resolve, reject) => {
    let text = '';
    let settled = false;
    const settle = (report: DaemonReport | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      channel.destroy();
      child.unref();
      if (report instanceof Error) reject(report);
      else resolve(report);
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      settle(
        new CtError(
          'EDAEMON',
          `the daemon (pid ${child.pid}) did not report within ${timeoutMs / 1000} s that it records; it was stopped: run ct-record with the same options but without -d to see why`,
        ),
      );
    }, timeoutMs);
    channel.setEncoding('utf8');
    channel.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        settle(JSON.parse(text.slice(0, nl)) as DaemonReport);
      } catch (err) {
        settle(err as Error);
      }
    });
    channel.on('error', () => {});
    child.on('error', (err) =>
      settle(new CtError('EDAEMON', `cannot start the daemon: ${err.message}`, { cause: err })),
    );
    child.on('exit', (code, signal) => {
      // A report written just before the exit is still in the pipe: let it arrive first.
      setImmediate(() =>
        settle({
          ready: false,
          message: `the daemon ended before it was recording (${signal ?? `exit ${code}`})`,
          exit: Exit.RUNTIME,
        }),
      );
    });
  });
}

/**
 * -d, in the launcher: starts the daemon (`argv`: this script and its options) and returns once
 * it records (exit 0), telling the user where its messages go; its failure is the launcher's,
 * with the daemon's message and exit status.
 */
export async function startDaemon(
  argv: readonly string[],
  write: (text: string) => void = (text) => process.stderr.write(text),
  launch: (argv: readonly string[]) => Promise<DaemonReport> = launchDaemon,
): Promise<number> {
  const report = await launch(argv);
  if (!report.ready) {
    throw new CtError('EDAEMON', report.message, { exit: report.exit as ExitCode });
  }
  write(`ct-record: daemon mode: check syslog (pid ${report.pid})\n`);
  if (report.syslog !== undefined) {
    write(
      `ct-record: WARNING: the daemon cannot reach syslog (${report.syslog}): its messages are lost; start a syslog daemon (rsyslog, systemd-journald) or run it under systemd without -d\n`,
    );
  }
  return 0;
}

/** The daemon's side of the channel, or undefined when this process is no daemon. */
export function daemonChannel(env: NodeJS.ProcessEnv = process.env): DaemonChannel | undefined {
  const fd = Number(env[DAEMON_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return undefined;
  // Not for the children it starts (nft for --enable-tracking).
  delete env[DAEMON_ENV];
  return new DaemonChannel(fd);
}

export class DaemonChannel {
  #fd: number | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Whether nothing was reported yet. */
  get open(): boolean {
    return this.#fd !== undefined;
  }

  report(report: DaemonReport): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      writeSync(fd, `${JSON.stringify(report)}\n`);
    } catch {
      // the launcher was killed: nobody to tell
    }
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
