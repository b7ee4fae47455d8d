// ct-record's signals: SIGINT and SIGTERM stop, SIGUSR1 rewrites the --table file, SIGHUP rotates.
import type { Logger } from './log.js';
import type { Recording } from './recording.js';

export type RecorderSignal = 'SIGINT' | 'SIGTERM' | 'SIGUSR1' | 'SIGHUP';

/** Where the signals come from: `process`, or a test's EventEmitter. */
export interface SignalSource {
  on(signal: RecorderSignal, listener: () => void): unknown;
  off(signal: RecorderSignal, listener: () => void): unknown;
}

/**
 * Wires the signals to the recording; returns what unwires them. `o` is the options as given:
 * -o, --rotate and --table.
 */
export function handleSignals(
  rec: Pick<Recording, 'stop' | 'rotate' | 'writeTable' | 'output'>,
  o: { output: string; rotate: boolean; table?: string },
  log: Logger,
  source: SignalSource = process,
): () => void {
  const table = o.table;
  const handlers: Record<RecorderSignal, () => void> = {
    SIGINT: () => rec.stop(),
    SIGTERM: () => rec.stop(),
    SIGUSR1: () => {
      if (table === undefined) {
        log.info('SIGUSR1 ignored: no --table file given');
        return;
      }
      log.info(`Dumping the flow table into: ${table}`);
      try {
        log.info(`flow table written to ${rec.writeTable()}`);
      } catch (err) {
        log.error(
          `cannot write the flow table: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    },
    // logrotate's postrotate (or systemctl reload): journals are never renamed under the
    // recorder, so "reopen" means: end this journal cleanly and go on in the next numbered one.
    SIGHUP: () => {
      if (!o.rotate) {
        log.info(
          `SIGHUP ignored: without --rotate the recording is one journal (${o.output}); record with --rotate to end a journal on SIGHUP`,
        );
        return;
      }
      log.info(`SIGHUP: ending ${rec.output}, going on in the next journal`);
      rec.rotate();
    },
  };
  const signals = Object.keys(handlers) as RecorderSignal[];
  for (const s of signals) source.on(s, handlers[s]);
  return () => {
    for (const s of signals) source.off(s, handlers[s]);
  };
}
