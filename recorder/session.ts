// One recording from start to summary: pidfile, start, signals, the lines a user reads, the end.
import { kernelFilterLine } from './bpf.js';
import type { DaemonChannel } from './daemon.js';
import type { Logger } from './log.js';
import type { RecordRun } from './options.js';
import {
  DEFAULT_PIDFILE,
  preparePidfileDir,
  refuseRunning,
  removePidfile,
  writePidfile,
} from './pidfile.js';
import { planPrivileges } from './privileges.js';
import { type Recording, type RecordOptions, startRecording } from './recording.js';
import { handleSignals, type SignalSource } from './signals.js';
import {
  gapLine,
  logSnapshot,
  logStart,
  logSummary,
  rotationLine,
  stopResyncLine,
} from './summary.js';

export interface SessionDeps {
  /** stderr in the foreground, syslog in the daemon. */
  log: Logger;
  /** The daemon's channel to its launcher (undefined in the foreground): told once recording. */
  channel?: DaemonChannel;
  /** The syslog logger's last send failure, for the launcher to show. */
  syslogFailure?: () => string | undefined;
  /** startRecording; tests start one over a fake capture. */
  start?: (opts: RecordOptions) => Recording;
  signals?: SignalSource;
  pid?: number;
}

/**
 * Records until a signal, --duration or --max-size ends it (or a failure, which throws), then
 * logs the summary; returns the exit status.
 */
export async function runSession(run: RecordRun, deps: SessionDeps): Promise<number> {
  const { log } = deps;
  const o = run.record;
  const pid = deps.pid ?? process.pid;
  const rotate = o.rotate === true;
  // Checked before anything is opened; written once recording, as the user of the drop.
  const pidfile = run.pidfile ?? (deps.channel === undefined ? undefined : DEFAULT_PIDFILE);
  if (pidfile !== undefined) {
    refuseRunning(pidfile);
    const plan = planPrivileges(o.user);
    preparePidfileDir(pidfile, plan.drop ? plan.user : undefined);
  }
  const rec = (deps.start ?? startRecording)({
    ...o,
    onRotate: (c, next) => log.info(rotationLine(c, next)),
    onGap: (g) => log.warn(gapLine(g)),
    onStopResync: (lost, limitMs) => log.info(stopResyncLine(lost, limitMs)),
  });
  const unwire = handleSignals(
    rec,
    { output: o.output, rotate, table: o.table },
    log,
    deps.signals,
  );
  if (pidfile !== undefined) {
    try {
      writePidfile(pidfile, pid);
    } catch (err) {
      rec.stop();
      await rec.done.catch(() => {});
      unwire();
      throw err;
    }
  }
  logStart(log, {
    output: o.output,
    current: rec.output,
    rotate,
    privileges: rec.privileges,
    netns: o.netns === undefined ? undefined : { spec: o.netns, id: rec.netns },
    enableTracking: o.enableTracking === true,
    bufferSize: rec.bufferSize,
    reliable: o.capture.reliable,
    pidfile,
    pid,
  });
  const filterLine = kernelFilterLine(rec.kernelFilter);
  if (filterLine !== undefined) log[filterLine.level](filterLine.text);
  const syslog = deps.syslogFailure?.();
  deps.channel?.report({ ready: true, pid, ...(syslog === undefined ? {} : { syslog }) });
  logSnapshot(log, rec.snapshot, o.snapshot);
  let summary: Awaited<Recording['done']>;
  try {
    summary = await rec.done;
  } finally {
    unwire();
    const why = pidfile === undefined ? undefined : removePidfile(pidfile, pid);
    if (why !== undefined) log.warn(why);
  }
  logSummary(log, summary, { output: o.output, rotate, table: o.table });
  if (rec.kernelFilter.where !== 'none') {
    log.info(`filter: ${rec.received()} event messages read from the kernel`);
  }
  return 0;
}
