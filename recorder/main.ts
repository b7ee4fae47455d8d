// ct-record once its options are settled: the pre-flight, the daemon's launch, or a recording.
import { CtError, Exit } from '../common/errors.js';
import { sendDatagram } from '../native/index.js';
import { type DaemonChannel, daemonChannel, startDaemon } from './daemon.js';
import { type Logger, stderrLogger, syslogLogger } from './log.js';
import type { RecorderRun, RecordRun } from './options.js';
import { runCheck } from './preflight.js';
import { runSession } from './session.js';

/**
 * Runs what the options ask for and returns the exit status; errors are CtErrors for runCli.
 * `argv` is this script and its options: -d starts the daemon as this script again.
 */
export async function runRecorder(
  run: RecorderRun,
  argv: readonly string[] = process.argv.slice(1),
): Promise<number> {
  const channel = daemonChannel();
  if (run.kind === 'check') return runCheck(run);
  if (run.daemon && channel === undefined) return startDaemon(argv);
  if (channel === undefined) return runSession(run, { log: stderrLogger() });
  return runDaemon(run, channel);
}

/** The daemon: messages to syslog; a failure reaches syslog and the launcher waiting for it. */
async function runDaemon(run: RecordRun, channel: DaemonChannel): Promise<number> {
  const syslog = syslogLogger({ socket: run.syslogSocket, send: sendDatagram });
  try {
    return await runSession(run, {
      log: syslog,
      channel,
      syslogFailure: () => syslog.lastFailure,
    });
  } catch (err) {
    // The daemon's stderr is /dev/null: the error goes to syslog, and to the launcher if it waits.
    reportFailure(err, syslog, channel);
    throw err;
  }
}

function reportFailure(err: unknown, log: Logger, channel: DaemonChannel): void {
  const message =
    err instanceof CtError ? err.message : `internal error (please report it): ${String(err)}`;
  log.error(message);
  channel.report({
    ready: false,
    message,
    exit: err instanceof CtError ? err.exit : Exit.RUNTIME,
  });
}
