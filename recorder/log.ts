// ct-record's one logger: the same messages on stderr (foreground) or to syslog (daemon mode).

export interface Logger {
  info(message: string): void;
  /** Something the recording survived but the user must know (lost events, a failed dump). */
  warn(message: string): void;
  /** The recording failed. */
  error(message: string): void;
}

export type Severity = 'info' | 'warn' | 'error';

/** What stands before a message's text, in every sink: the syslog priority says it too. */
const PREFIX: Record<Severity, string> = { info: '', warn: 'WARNING: ', error: '' };

/** The text a message has in every sink (without the sink's own `ct-record:` framing). */
export function messageText(severity: Severity, message: string): string {
  return PREFIX[severity] + message;
}

/** Foreground (-f): `ct-record: …` lines on stderr, as ct-record always printed them. */
export function stderrLogger(
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const put = (severity: Severity) => (message: string) =>
    write(`ct-record: ${messageText(severity, message)}\n`);
  return { info: put('info'), warn: put('warn'), error: put('error') };
}

/** Facility daemon (3), RFC 3164 section 4.1.1: PRI = facility × 8 + severity. */
const FACILITY_DAEMON = 3;
const SEVERITY_CODE: Record<Severity, number> = { error: 3, warn: 4, info: 6 };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** What every syslog daemon accepts in one datagram (RFC 3164 says 1024; rsyslog and journald take 8 KiB). */
const MAX_MESSAGE = 2048;

/** `Mmm dd hh:mm:ss` in local time, the day padded with a space (RFC 3164 TIMESTAMP). */
export function syslogTimestamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const month = MONTHS[date.getMonth()] as string;
  return `${month} ${String(date.getDate()).padStart(2, ' ')} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/**
 * One RFC 3164 line as glibc's syslog(3) sends it to /dev/log: `<PRI>TIMESTAMP TAG[PID]: MSG`,
 * facility daemon, no HOSTNAME (the local daemon adds it). A line break or other control
 * character would split or garble the line in the log file: each becomes a space.
 */
export function syslogLine(
  severity: Severity,
  message: string,
  opts: { ident: string; pid: number; date: Date },
): string {
  const pri = FACILITY_DAEMON * 8 + SEVERITY_CODE[severity];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are the point
  let text = messageText(severity, message).replace(/[\x00-\x1f\x7f]/g, ' ');
  if (text.length > MAX_MESSAGE) text = `${text.slice(0, MAX_MESSAGE - 1)}…`;
  return `<${pri}>${syslogTimestamp(opts.date)} ${opts.ident}[${opts.pid}]: ${text}`;
}

export const DEFAULT_SYSLOG_SOCKET = '/dev/log';

export interface SyslogLogger extends Logger {
  /** The last send failure (no syslog listening, its queue full), or undefined: none so far. */
  readonly lastFailure: string | undefined;
  /** Messages that could not be sent. */
  readonly lost: number;
}

export interface SyslogOptions {
  /** The unix datagram socket of the syslog daemon (default /dev/log). */
  socket?: string;
  ident?: string;
  pid?: number;
  now?: () => Date;
  /** One datagram to the socket: the addon's sendDatagram. */
  send: (socket: string, line: string) => void;
}

/**
 * Daemon mode (-d): each message is one datagram to the syslog socket. A message that cannot be
 * sent is lost (stderr is /dev/null in daemon mode): never a reason to stop recording. The
 * failure is kept, for the launcher to show when the daemon reports it is recording.
 */
export function syslogLogger(opts: SyslogOptions): SyslogLogger {
  const socket = opts.socket ?? DEFAULT_SYSLOG_SOCKET;
  const ident = opts.ident ?? 'ct-record';
  const now = opts.now ?? (() => new Date());
  let lastFailure: string | undefined;
  let lost = 0;
  const put = (severity: Severity) => (message: string) => {
    const pid = opts.pid ?? process.pid;
    try {
      opts.send(socket, syslogLine(severity, message, { ident, pid, date: now() }));
    } catch (err) {
      lost++;
      lastFailure = `${socket}: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  return {
    info: put('info'),
    warn: put('warn'),
    error: put('error'),
    get lastFailure() {
      return lastFailure;
    },
    get lost() {
      return lost;
    },
  };
}
