// Least privilege for ct-record: which user to become, the drop (through the addon), what was kept.
import { writeFileSync } from 'node:fs';
import { CtError, Exit } from '../common/errors.js';
import {
  type ConntrackEventsValue,
  dropPrivileges,
  getpwnam,
  getpwuid,
  isConntrackEventsValue,
  type PasswdEntry,
  setConntrackEvents as setNativeConntrackEvents,
} from '../native/index.js';

/**
 * ct-record's own system account, not the shared `nobody`: journals after the first of a
 * --rotate run and /run/ct-record belong to this user, so every service running as it could
 * read every flow, tamper with the recording or stop it.
 */
export const DEFAULT_USER = 'conntracker';
/** How to create DEFAULT_USER (systemd's DynamicUser= makes one of its own instead). */
export const USERADD_COMMAND = `useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${DEFAULT_USER}`;
/** The one capability still needed after start: table dumps and the nf_conntrack_events restore. */
export const KEPT_CAPABILITY = 'CAP_NET_ADMIN';
/** Name of the keeper thread in /proc/PID/task/TID/comm. */
export const KEEPER_THREAD = 'ct-netadmin';

/** Decided before anything is opened, so that a bad --user leaves nothing behind. */
export type PrivilegePlan = { drop: true; user: PasswdEntry } | { drop: false; why: string };

export interface Privileges {
  dropped: boolean;
  /** One line for stderr: who the process now runs as and what it kept. */
  summary: string;
  /** The thread that kept CAP_NET_ADMIN, when dropped. */
  keeperTid?: number;
}

/** A passwd lookup by name or uid: null when there is no such user. */
export type UserLookup = (user: string) => PasswdEntry | null;

/** The addon's passwd lookup (NSS included); a failing lookup is a CtError. */
export function lookupUser(user: string): PasswdEntry | null {
  return /^\d+$/.test(user) ? getpwuid(Number(user)) : getpwnam(user);
}

/**
 * `user` is the --user value (undefined: the default, DEFAULT_USER). As root: drop to that user,
 * or stay root when it is root (uid 0). Not root: nothing to drop, and an explicit --user is an
 * error. An unknown user is a usage error; a missing default account too, naming the useradd
 * command (never a silent fallback to nobody). `find`: tests pass their own passwd.
 */
export function planPrivileges(
  user: string | undefined,
  euid: number = process.geteuid?.() ?? 0,
  find: UserLookup = lookupUser,
): PrivilegePlan {
  if (euid !== 0) {
    if (user !== undefined) {
      throw new CtError(
        'EUSAGE',
        `--user ${user} needs root: ct-record runs as uid ${euid} and has no root privileges to give up; leave out --user`,
        { exit: Exit.USAGE },
      );
    }
    return { drop: false, why: `running as uid ${euid}, not root: no privileges to drop` };
  }
  const name = user ?? DEFAULT_USER;
  if (name === '' || name.includes('\0')) {
    throw new CtError('EUSAGE', `--user '${name}' is not a user name: give a name or a uid`, {
      exit: Exit.USAGE,
    });
  }
  const entry = find(name);
  if (entry === null && user === undefined) {
    throw new CtError(
      'EUSER',
      `the default --user account ${name} does not exist: create it (${USERADD_COMMAND}), or pass --user USER to run as an existing account (--user nobody shares its files with every other service running as nobody)`,
      { exit: Exit.USAGE },
    );
  }
  if (entry === null) {
    throw new CtError(
      'EUSER',
      `unknown user '${name}' for --user: give an existing user (getent passwd ${name} finds nothing), or --user root to keep root`,
      { exit: Exit.USAGE },
    );
  }
  if (entry.uid === 0) {
    return {
      drop: false,
      why: `--user ${name}: staying root with every capability (no privilege drop)`,
    };
  }
  return { drop: true, user: entry };
}

/** Whether this process dropped root (a drop happens once and cannot be undone). */
let dropped = false;

/**
 * Carries out the plan: call it once the netlink sockets and the output file are open (they
 * stay usable; opening new ones as root no longer works). Dump requests and setConntrackEvents()
 * then go through the one thread that kept CAP_NET_ADMIN.
 */
export function applyPrivileges(plan: PrivilegePlan): Privileges {
  if (!plan.drop) return { dropped: false, summary: plan.why };
  const { name, uid, gid } = plan.user;
  const result = dropPrivileges(plan.user);
  const nnp = result.allNoNewPrivs ? 'every thread' : 'the main and keeper threads';
  dropped = true;
  return {
    dropped: true,
    keeperTid: result.keeperTid,
    summary:
      `dropped root: now user ${name} (uid ${uid}, gid ${gid}, no supplementary groups); ` +
      `kept ${KEPT_CAPABILITY} on thread ${result.keeperTid} (${KEEPER_THREAD}) for conntrack dumps and sysctl restores only, ` +
      `no capabilities on any other thread; no_new_privs on ${nnp}`,
  };
}

/** Where the --enable-events sysctl lives, in the network namespace of the thread opening it. */
export const CONNTRACK_EVENTS_SYSCTL = '/proc/sys/net/netfilter/nf_conntrack_events';

/**
 * Sets net.netfilter.nf_conntrack_events (0, 1 or 2) with the kept capability after the drop (a
 * net.* sysctl honours CAP_NET_ADMIN in the namespace's user namespace): the one write the kept
 * capability is for, path and values fixed in the addon. A plain write when nothing was dropped.
 */
export function setConntrackEvents(value: ConntrackEventsValue): void {
  if (!isConntrackEventsValue(value)) {
    throw new CtError(
      'EUSAGE',
      `nf_conntrack_events cannot be set to ${String(value)}: give 0, 1 or 2`,
      {
        exit: Exit.USAGE,
      },
    );
  }
  // Without a drop the addon may not even load (a failed start): a plain write is all it takes.
  if (dropped) setNativeConntrackEvents(value);
  else writeFileSync(CONNTRACK_EVENTS_SYSCTL, `${value}\n`);
}
