// --enable-tracking: an nft table of our own whose rule needs conntrack, gone when the run ends.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { CtError, sysCode } from '../common/errors.js';

/** Tables are named per process, so two recorders in one namespace never share one. */
export const TRACKING_TABLE_PREFIX = 'conntracker_track';

export function trackingTable(pid: number = process.pid): string {
  return `${TRACKING_TABLE_PREFIX}_${pid}`;
}

/**
 * One line, so that nft sends it as one transaction: the table appears with its rules or not at
 * all. `flags owner` makes the kernel delete the table when the netlink socket that created it
 * closes, i.e. when the nft process holding it exits for any reason (even SIGKILL). The chains
 * sit after conntrack (mangle, -150) so that the counters count the flows conntrack sees; the
 * rules only count and the base chains accept, which ends nothing: other chains still decide.
 */
export function trackingCommands(table: string): string {
  const chain = (name: string, hook: string) =>
    `add chain inet ${table} ${name} { type filter hook ${hook} priority mangle; policy accept; }`;
  return [
    `add table inet ${table} { flags owner; }`,
    chain('pre', 'prerouting'),
    chain('out', 'output'),
    `add rule inet ${table} pre ct state new counter`,
    `add rule inet ${table} out ct state new counter`,
  ].join(' ; ');
}

/**
 * The holder: nft in interactive mode reads the one line, then waits on its standard input. That
 * input is a shell loop that reads ct-record's pipe and throws every line away: whatever a
 * recorder that was taken over might write there never reaches nft (a loop, not `cat >/dev/null`,
 * which the shell would exec with the pipe to nft closed: nft would end at once). When ct-record
 * closes the pipe or dies, the loop ends, nft reads end of file and exits, and the kernel removes
 * the table. Once nft has exited, for whatever reason, the holder kills its own process group (its
 * own session: see `detached`), so that its exit tells ct-record the table is gone even when nft
 * died first. It ignores SIGINT, SIGTERM and SIGHUP: a stop of a whole systemd unit or process
 * group must not end it before the recorder has drained its events.
 */
const HOLDER = [
  "trap '' INT TERM HUP",
  `{ printf '%s\\n' "$1"; while read -r _; do :; done; } | { nft -i; kill -s KILL -- -$$; }`,
].join('\n');

export interface TrackingTable {
  /** The table's name (family inet). */
  readonly table: string;
  /** Ends the holder and resolves once it has exited, i.e. the table is gone. Idempotent. */
  stop(): Promise<void>;
}

export interface TrackingOptions {
  /** How long to wait for the table to appear; default 3 s. */
  timeoutMs?: number;
  /** Called once if the holder exits before stop() (the table is then gone); default: a warning. */
  onLost?: (table: string) => void;
}

function warnLost(table: string): void {
  process.stderr.write(
    `ct-record: WARNING: the nft process holding table inet ${table} ended, so the table is gone: unless another rule needs conntrack, flows from now on are not tracked\n`,
  );
}

function nftFailure(err: unknown): string {
  if (sysCode(err) === 'ENOENT') return 'nft is not installed (apt install nftables)';
  const stderr = (err as { stderr?: Buffer | string }).stderr?.toString().trim() ?? '';
  const first = stderr.split('\n').find((l) => l.trim() !== '') ?? String(err);
  return `nft says: ${first.trim()}`;
}

/** A blocking pause: start-up is synchronous, and the holder runs in a process of its own. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tableExists(table: string): boolean {
  try {
    execFileSync('nft', ['list', 'table', 'inet', table], { stdio: 'ignore', timeout: 2000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds the table (as root, before the privilege drop: the holder keeps root, the recorder does
 * not need to) and returns once nft reports it in the ruleset. Throws a CtError that says what
 * to do when nft is missing, the caller is not privileged, or the kernel has no owner tables.
 */
export function enableTracking(opts: TrackingOptions = {}): TrackingTable {
  const table = trackingTable();
  const line = trackingCommands(table);
  const fail = (why: string, cause?: unknown) =>
    new CtError(
      'ETRACKING',
      `--enable-tracking cannot add table inet ${table}: ${why} — run as root with nftables installed (owner tables need Linux ≥ 5.12 and nft ≥ 0.9.9), or add a rule that needs conntrack yourself (see ct-record --help)`,
      { cause },
    );
  try {
    // A dry run first: nft's own message for a missing privilege or kernel feature, at once.
    execFileSync('nft', ['-c', '-f', '-'], { input: `${line}\n`, stdio: 'pipe', timeout: 5000 });
  } catch (err) {
    throw fail(nftFailure(err), err);
  }
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', HOLDER, 'sh', line], {
      // Its own session: Ctrl-C on the terminal reaches the recorder, which then drains first.
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      // nft -i keeps a history file in $HOME: none for a service's commands.
      env: { ...process.env, HOME: '/nonexistent', TERM: 'dumb' },
    });
  } catch (err) {
    throw fail(String(err), err);
  }
  let exited = false;
  let stopping: Promise<void> | undefined;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      if (stopping === undefined) (opts.onLost ?? warnLost)(table);
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  // A holder that died leaves nothing to write to: its end of file is what we want anyway.
  child.stdin?.on('error', () => {});
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      // Held until it is gone: the table must not outlive the recording's end.
      child.ref();
      child.stdin?.end();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 5000);
      });
      const done = await Promise.race([gone.then(() => true), late]);
      clearTimeout(timer);
      if (!done) {
        process.stderr.write(
          `ct-record: WARNING: the nft process holding table inet ${table} did not exit: end it with kill -KILL -- -${child.pid} (the kernel then deletes the table)\n`,
        );
      }
    })();
    return stopping;
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 3000);
  while (!tableExists(table)) {
    if (Date.now() > deadline) {
      void stop();
      throw fail(`nft did not create it within ${opts.timeoutMs ?? 3000} ms`);
    }
    sleepSync(10);
  }
  // Neither the holder nor our end of its pipe keeps ct-record alive; stop() takes it back.
  child.unref();
  (child.stdin as { unref?: () => void } | null)?.unref?.();
  return { table, stop };
}
