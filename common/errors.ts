// One error class for every failure a user can cause or fix, and every code it carries, each with its exit status.

/** Exit codes, as conntrack-tools uses them: 0 ok, 1 runtime, 2 usage, 3 version. */
export const Exit = {
  OK: 0,
  RUNTIME: 1,
  USAGE: 2,
  VERSION: 3,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** A code's exit status and meaning; `also` is the one kind of call site that exits otherwise. */
export interface ErrorEntry {
  readonly exit: ExitCode;
  readonly meaning: string;
  readonly also?: { readonly exit: ExitCode; readonly when: string };
}

/**
 * Every code a CtError carries, listed once. `exit` is what the CLIs exit with unless the call
 * site says otherwise, and only `also` may: a code named after an errno (EACCES, EEXIST, ENOTDIR…)
 * keeps exit 1, because a failed system call passes its errno name through with that exit, and
 * the refused option that shares the name says exit 2 where it is thrown. test/common/errors
 * checks every call site against this list; docs/analyze.md prints it (docs/record.md points there).
 */
export const ERRORS = {
  // Usage (2): the command line asks for something that cannot be done as given.
  EUSAGE: { exit: Exit.USAGE, meaning: 'an option, argument or combination of them is not valid' },
  ETTY: { exit: Exit.USAGE, meaning: 'import - was given a terminal, not a piped capture' },
  ENOKEY: { exit: Exit.USAGE, meaning: 'redact was given no --key' },
  EKEY: {
    exit: Exit.USAGE,
    meaning:
      'the --key file is no regular file or holds too few or too many bytes; unreadable, it is its errno name (ENOENT…), exit 2 all the same',
  },
  ESAMEFILE: { exit: Exit.USAGE, meaning: 'redact would write over the journal it reads' },
  EDUPLICATE: {
    exit: Exit.USAGE,
    meaning: 'redact was given one journal twice, or two for one place of a run',
  },
  ENOCHAIN: { exit: Exit.USAGE, meaning: 'redact into a directory got a journal of no run' },
  EREDACTED: { exit: Exit.USAGE, meaning: 'the journal is redacted already' },
  ENONETNS: { exit: Exit.USAGE, meaning: '--netns names no network namespace' },
  ENOTNETNS: { exit: Exit.USAGE, meaning: '--netns names a file that is no network namespace' },
  // Version (3).
  EVERSION: { exit: Exit.VERSION, meaning: 'the journal was written by a later format version' },
  // Runtime (1): journals.
  ECORRUPT: { exit: Exit.RUNTIME, meaning: 'damaged bytes with more journal after them' },
  EMODIFIED: {
    exit: Exit.RUNTIME,
    meaning: 'frames were removed, reordered or replaced (digest or counts disagree)',
  },
  ETRUNCATED: {
    exit: Exit.RUNTIME,
    meaning: 'the journal ends inside its magic or header, or shrank while being followed',
  },
  ENOTJOURNAL: { exit: Exit.RUNTIME, meaning: 'the file is not a conntracker journal' },
  ENOTFILE: { exit: Exit.RUNTIME, meaning: 'the journal path is not a regular file' },
  ECHAIN: { exit: Exit.RUNTIME, meaning: '--follow found the next journal of a run not linked' },
  ECHANGED: {
    exit: Exit.RUNTIME,
    meaning: 'an input changed while it was read twice (import, redact of a run)',
  },
  // Runtime (1): files, named after the errno they stand for.
  EIO: { exit: Exit.RUNTIME, meaning: 'a read or write failed without an errno name' },
  EEXIST: {
    exit: Exit.RUNTIME,
    meaning: 'the output exists: --force replaces it',
    also: { exit: Exit.USAGE, when: 'the --pidfile names a ct-record still running' },
  },
  EISDIR: { exit: Exit.RUNTIME, meaning: 'a directory where a file was expected' },
  ENOTDIR: {
    exit: Exit.RUNTIME,
    meaning: 'a path through something that is not a directory',
    also: {
      exit: Exit.USAGE,
      when: 'redact -o is not a directory and must be one (several journals)',
    },
  },
  ELOOP: { exit: Exit.RUNTIME, meaning: 'a symbolic link where the tool follows none' },
  EACCES: {
    exit: Exit.RUNTIME,
    meaning: 'permission denied',
    also: { exit: Exit.USAGE, when: 'the --pidfile directory is unsafe, or closed to --user' },
  },
  EPERM: { exit: Exit.RUNTIME, meaning: 'a privilege is missing (CAP_NET_ADMIN, CAP_SYS_ADMIN)' },
  // Runtime (1): ct-analyze.
  ENOENTRIES: { exit: Exit.RUNTIME, meaning: 'the capture to import holds no conntrack entry' },
  ERULESET: {
    exit: Exit.RUNTIME,
    meaning: 'the ruleset file cannot be read',
  },
  ENOLOADER: {
    exit: Exit.RUNTIME,
    meaning:
      'a text ruleset needs nft (iptables-nft-restore) and a throwaway namespace, and one is missing: install it or pass nft -j JSON',
  },
  ERULESYNTAX: {
    exit: Exit.USAGE,
    meaning:
      "nft or iptables-nft-restore refused the ruleset (their messages, with its lines), or the JSON is not nft's",
  },
  ERULELOAD: {
    exit: Exit.RUNTIME,
    meaning:
      'loading the ruleset in a throwaway namespace timed out, overflowed or lacked a kernel module',
  },
  EOUTPUT: { exit: Exit.RUNTIME, meaning: 'the report cannot be written' },
  // Runtime (1): ct-record.
  ENOADDON: { exit: Exit.RUNTIME, meaning: 'the native addon is not built' },
  ENETLINK: { exit: Exit.RUNTIME, meaning: 'the conntrack netlink socket or dump failed' },
  ECANCELED: { exit: Exit.RUNTIME, meaning: 'the start-up dump of the table was cancelled' },
  ENOBUFS: {
    exit: Exit.RUNTIME,
    meaning: "the netlink socket's receive buffer overflowed: events were lost",
  },
  ENETNS: { exit: Exit.RUNTIME, meaning: 'joining the network namespace failed' },
  ECAPTURE: { exit: Exit.RUNTIME, meaning: 'the conntrack reader failed while recording' },
  ESYSCTL: { exit: Exit.RUNTIME, meaning: 'a conntrack sysctl cannot be read or set' },
  ETRACKING: { exit: Exit.RUNTIME, meaning: '--enable-tracking cannot add its nftables table' },
  EUSER: {
    exit: Exit.RUNTIME,
    meaning: 'looking up the --user account failed',
    also: { exit: Exit.USAGE, when: 'the account does not exist' },
  },
  EPRIVDROP: { exit: Exit.RUNTIME, meaning: 'dropping privileges to --user failed' },
  EPIDFILE: {
    exit: Exit.RUNTIME,
    meaning: 'the pidfile cannot be created or written',
    also: { exit: Exit.USAGE, when: 'the --pidfile path is refused (a link, planted, no dir)' },
  },
  ETABLE: { exit: Exit.RUNTIME, meaning: 'the --table file cannot be opened or written safely' },
  ESEND: { exit: Exit.RUNTIME, meaning: 'a message could not be sent to syslog (/dev/log)' },
  EDAEMON: {
    exit: Exit.RUNTIME,
    meaning: 'the daemon did not start (it exits as its start-up failure did)',
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * A literal code must be one of ERRORS (a typo does not compile); a code computed at run time
 * (a system call's errno name, passed through: ENOENT, ENOSPC…) is accepted as a string.
 */
type CheckedCode<C extends string> = string extends C ? C : C extends ErrorCode ? C : ErrorCode;

/** The exit status of `code` when the call site names none: its entry's, else 1 (an errno). */
export function exitOf(code: string): ExitCode {
  return Object.hasOwn(ERRORS, code) ? ERRORS[code as ErrorCode].exit : Exit.RUNTIME;
}

/**
 * A failure with a stable code and a message that says what happened, then what to do.
 * CLIs print `message` alone (no stack) and exit with `exit`.
 */
export class CtError<C extends string = string> extends Error {
  readonly code: string;
  readonly exit: ExitCode;

  constructor(
    code: C & NoInfer<CheckedCode<C>>,
    message: string,
    options: { exit?: ExitCode; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CtError';
    this.code = code;
    this.exit = options.exit ?? exitOf(code);
  }
}

/** The errno-style code of a Node system error, if it is one. */
export function sysCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}
