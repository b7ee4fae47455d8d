// ct-record --check's findings: what each fact means for a recording, and the fix; pure, no I/O.
import type { PasswdEntry } from '../native/index.js';
import { DEFAULT_USER, USERADD_COMMAND } from './privileges.js';
import { TRACKING_TABLE_PREFIX } from './tracking.js';
import type { FamilyProbe, TrackingProbe } from './tracking-probe.js';

export type FindingStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** Stable name: module, privileges, user, addon, events, tracking, rmem, timestamp, acct. */
  id: string;
  status: FindingStatus;
  /** What was found and what it means for a recording. */
  what: string;
  /** The exact command or option that fixes it (lines separated by \n). */
  fix?: string;
}

/** The recording being checked: the ct-record options given with --check. */
export interface PreflightOptions {
  /** -b: the netlink receive buffer asked for, in bytes. */
  bufferSize: number;
  /** false with --no-snapshot. */
  snapshot: boolean;
  enableEvents: boolean;
  enableTracking: boolean;
  /** --user as given; undefined: DEFAULT_USER. */
  user?: string;
}

/** What /proc and /sys say, read without privileges. */
export interface PreflightFacts {
  netns: string;
  conntrackLoaded: boolean;
  euid: number;
  /** CAP_NET_ADMIN in the effective set; null when /proc/self/status says nothing. */
  netAdmin: boolean | null;
  /** The sysctls; null when absent (module not loaded) or unreadable. */
  events: number | null;
  timestamp: number | null;
  acct: number | null;
  rmemMax: number | null;
  /** nf_conntrack_count: entries in this namespace's table now. */
  count: number | null;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/** What the live probes found (they need privileges and the addon). */
export interface LiveFacts {
  /** The addon's path when it loads. */
  addon: Outcome<string>;
  /** The passwd entry of the account ct-record would drop to (null: none); looked up as root only. */
  account?: Outcome<PasswdEntry | null>;
  /** Undefined when not tried (nf_conntrack not loaded: nothing can be tracked). */
  probe?: Outcome<TrackingProbe>;
  /** --enable-tracking given and tracking not active: the probe made with its table in place. */
  withTracking?: Outcome<TrackingProbe>;
}

/**
 * The nft form of the original tool's raw-table rules, as ct-record --help shows them. (Not a
 * table named `ct`: that is an nft keyword, `nft add table inet ct` is a syntax error.)
 */
export const TRACKING_RULES = [
  'nft add table inet conntracker',
  "nft add chain inet conntracker pre '{ type filter hook prerouting priority raw; }'",
  "nft add chain inet conntracker out '{ type filter hook output priority raw; }'",
  'nft add rule inet conntracker pre ct state new,established,related accept',
  'nft add rule inet conntracker out ct state new,established,related accept',
];

const TRACKING_FIX = [
  'ct-record --enable-tracking (adds a table of its own for the run, removed at exit), or add a rule that needs conntrack:',
  ...TRACKING_RULES,
].join('\n');

export function bytesText(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

function moduleFinding(f: PreflightFacts): Finding {
  return f.conntrackLoaded
    ? { id: 'module', status: 'ok', what: 'nf_conntrack is loaded' }
    : {
        id: 'module',
        status: 'fail',
        what: 'nf_conntrack is not loaded: the kernel tracks no connection and has no events to send',
        fix: 'modprobe nf_conntrack',
      };
}

function privilegesFinding(f: PreflightFacts): Finding {
  if (f.euid === 0) {
    return {
      id: 'privileges',
      status: 'ok',
      what: `running as root: ct-record opens its socket and journal, then drops to --user (default ${DEFAULT_USER}), keeping CAP_NET_ADMIN on one thread for table dumps`,
    };
  }
  if (f.netAdmin === true) {
    return {
      id: 'privileges',
      status: 'ok',
      what: `running as uid ${f.euid} with CAP_NET_ADMIN: enough to subscribe and dump the table (no privilege drop; --user and --enable-tracking need root)`,
    };
  }
  return {
    id: 'privileges',
    status: 'fail',
    what: `running as uid ${f.euid} without CAP_NET_ADMIN: ct-record cannot subscribe to conntrack events`,
    fix: 'run it as root: sudo ct-record …',
  };
}

function addonFinding(live: LiveFacts): Finding {
  return live.addon.ok
    ? { id: 'addon', status: 'ok', what: `the native addon loads (${live.addon.value})` }
    : {
        id: 'addon',
        status: 'fail',
        what: live.addon.error,
        fix: 'apt install g++ make python3 linux-libc-dev, then npm rebuild conntracker',
      };
}

const USER_FIX = `${USERADD_COMMAND}\nor pass --user USER to run as an existing account`;

/** The account of the privilege drop: a missing one stops ct-record before it records. */
function userFinding(f: PreflightFacts, live: LiveFacts, o: PreflightOptions): Finding {
  const id = 'user';
  const name = o.user ?? DEFAULT_USER;
  if (f.euid !== 0) {
    return {
      id,
      status: o.user === undefined ? 'ok' : 'fail',
      what:
        o.user === undefined
          ? `running as uid ${f.euid}, not root: no privilege drop, so no --user account is needed`
          : `--user ${o.user} needs root: ct-record runs as uid ${f.euid}`,
      ...(o.user === undefined ? {} : { fix: 'leave out --user, or run as root' }),
    };
  }
  const account = live.account;
  if (account === undefined || !account.ok) {
    return {
      id,
      status: 'warn',
      what: `cannot look up user ${name}: ${account?.ok === false ? account.error : 'not tried'}`,
      fix: `getent passwd ${name}; check /etc/nsswitch.conf`,
    };
  }
  const entry = account.value;
  if (entry === null) {
    return o.user === undefined
      ? {
          id,
          status: 'fail',
          what: `the default --user account ${name} does not exist: ct-record would refuse to start`,
          fix: USER_FIX,
        }
      : {
          id,
          status: 'fail',
          what: `unknown user '${name}' for --user: ct-record would refuse to start`,
          fix: `give an existing user, or create ${DEFAULT_USER} (${USERADD_COMMAND}) and leave out --user`,
        };
  }
  if (entry.uid === 0) {
    return { id, status: 'ok', what: `--user ${name}: ct-record stays root (no privilege drop)` };
  }
  if (entry.name === 'nobody') {
    return {
      id,
      status: 'warn',
      what: `--user nobody is shared with other services: any of them could read the journals after the first of a --rotate run and the pidfile, tamper with them or stop the recording`,
      fix: `${USERADD_COMMAND}, and leave out --user`,
    };
  }
  return {
    id,
    status: 'ok',
    what: `after start ct-record drops to user ${entry.name} (uid ${entry.uid}, gid ${entry.gid})${entry.name === DEFAULT_USER ? ', an account of its own' : ''}`,
  };
}

function eventsFinding(f: PreflightFacts, o: PreflightOptions): Finding {
  const e = f.events;
  const id = 'events';
  if (e === 1) {
    return {
      id,
      status: 'ok',
      what: 'nf_conntrack_events=1: every flow sends events, also flows older than the recording',
    };
  }
  if (e === 0 || e === 2) {
    if (o.enableEvents) {
      return {
        id,
        status: 'ok',
        what: `nf_conntrack_events=${e} now; --enable-events sets it to 1 for the run and restores it at exit`,
      };
    }
    if (e === 0) {
      return {
        id,
        status: 'fail',
        what: 'nf_conntrack_events=0: the kernel sends no conntrack events at all; only table dumps would be recorded',
        fix: 'ct-record --enable-events, or sysctl -w net.netfilter.nf_conntrack_events=1',
      };
    }
    if (!o.snapshot) {
      return {
        id,
        status: 'fail',
        what: 'nf_conntrack_events=2 and --no-snapshot: flows older than the recording send no events and no table dump records them, so they would be missing',
        fix: 'leave out --no-snapshot, or add --enable-events',
      };
    }
    return {
      id,
      status: 'warn',
      what: 'nf_conntrack_events=2: flows older than the recording send no events, not even when they end; ct-record dumps the table at start, so they are recorded as snapshot entries, but not their end',
      fix: 'ct-record --enable-events (1 for the run), or sysctl -w net.netfilter.nf_conntrack_events=1',
    };
  }
  return {
    id,
    status: 'warn',
    what:
      e === null
        ? 'nf_conntrack_events cannot be read (nf_conntrack not loaded?)'
        : `nf_conntrack_events=${e} is not a value this tool knows`,
    fix: 'sysctl -w net.netfilter.nf_conntrack_events=1',
  };
}

const FAMILY_NAME: Record<4 | 6, string> = { 4: 'IPv4', 6: 'IPv6' };

function names(list: readonly FamilyProbe[]): string {
  return list.map((p) => FAMILY_NAME[p.family]).join(' and ');
}

const active = (p: FamilyProbe) => p.seen === 'event' || p.seen === 'table';
/** Not tracked, and nothing else of that family in the table either. */
export const inactive = (p: FamilyProbe) => p.seen === 'none' && (p.others ?? 0) === 0;

function probeText(probe: TrackingProbe): string {
  const on = probe.families.filter(active);
  const events = on.filter((p) => p.seen === 'event');
  const how =
    events.length === on.length
      ? `seen as NEW events after ${Math.max(...events.map((p) => p.ms ?? 0))} ms`
      : 'found in a table dump (no NEW event: nf_conntrack_events=0)';
  const off = probe.families.filter((p) => p.seen === 'unavailable');
  const note = off.length > 0 ? `; ${names(off)} is not available here (${off[0]?.why})` : '';
  return `probe flows on loopback (${names(on)}) were ${how}${note}`;
}

function trackingFinding(f: PreflightFacts, live: LiveFacts, o: PreflightOptions): Finding {
  const id = 'tracking';
  if (!f.conntrackLoaded) {
    return {
      id,
      status: 'fail',
      what: 'conntrack cannot be active in this network namespace: nf_conntrack is not loaded',
      fix: TRACKING_FIX,
    };
  }
  const count =
    f.count === null ? '' : `; the table holds ${f.count} ${f.count === 1 ? 'entry' : 'entries'}`;
  if (live.probe === undefined || !live.probe.ok) {
    const why = live.probe?.ok === false ? live.probe.error : 'not tried';
    return {
      id,
      status: 'warn',
      what: `whether conntrack is active in this network namespace is unknown: the probe failed (${why})${count}`,
      fix: 'run ct-record --check as root, with the addon built',
    };
  }
  const probe = live.probe.value;
  const available = probe.families.filter((p) => p.seen !== 'unavailable');
  if (available.length === 0) {
    return {
      id,
      status: 'warn',
      what: `whether conntrack is active in this network namespace is unknown: loopback has no address to probe with (${probe.families[0]?.why})${count}`,
      fix: 'ip link set lo up',
    };
  }
  const off = available.filter(inactive);
  if (off.length > 0) {
    const what =
      off.length === available.length
        ? 'conntrack is not active in this network namespace: a probe flow on loopback was not tracked, so no flow would be recorded (a namespace tracks connections only once a rule needs conntrack)'
        : `conntrack tracks ${names(available.filter(active))} but not ${names(off)} in this network namespace: ${names(off)} flows would not be recorded (a rule needs conntrack only in a table of the other family, e.g. iptables without ip6tables)`;
    if (o.enableTracking && live.withTracking !== undefined) {
      if (live.withTracking.ok && live.withTracking.value.families.every((p) => !inactive(p))) {
        return {
          id,
          status: 'ok',
          what: `no rule needs conntrack for ${names(off)} here yet; --enable-tracking adds table inet ${TRACKING_TABLE_PREFIX}_PID for the run, and with it in place ${probeText(live.withTracking.value)}`,
        };
      }
      const why = live.withTracking.ok
        ? 'the probe flows were still not tracked with its table in place'
        : live.withTracking.error;
      return {
        id,
        status: 'fail',
        what: `${what}; --enable-tracking did not help: ${why}`,
        fix: TRACKING_FIX,
      };
    }
    return { id, status: 'fail', what, fix: TRACKING_FIX };
  }
  const exempt = available.filter((p) => !active(p));
  if (exempt.length > 0) {
    const n = exempt.reduce((sum, p) => sum + (p.others ?? 0), 0);
    return {
      id,
      status: 'warn',
      what: `a probe flow on loopback was not tracked (${names(exempt)}), yet the table holds ${n === 1 ? '1 entry' : `${n} entries`} of that family from other addresses: loopback may be exempt from tracking (notrack), or the rule that needed conntrack was removed less than a timeout ago`,
      fix: `look for notrack and ct rules: nft list ruleset | grep -w -e notrack -e ct\n${TRACKING_FIX}`,
    };
  }
  return {
    id,
    status: 'ok',
    what: `conntrack is active in this network namespace: ${probeText(probe)}`,
  };
}

function rmemFinding(f: PreflightFacts, live: LiveFacts, o: PreflightOptions): Finding {
  const id = 'rmem';
  const asked = `the netlink receive buffer asked for (-b ${bytesText(o.bufferSize)})`;
  const max = f.rmemMax === null ? 'net.core.rmem_max' : `net.core.rmem_max=${f.rmemMax}`;
  const fix = `sysctl -w net.core.rmem_max=${o.bufferSize}, or run ct-record as root (it then forces the size with SO_RCVBUFFORCE)`;
  const granted = live.probe?.ok ? live.probe.value.bufferSize : undefined;
  if (granted !== undefined) {
    // The kernel doubles what is asked for (its bookkeeping overhead): that is the full grant.
    if (granted >= 2 * o.bufferSize) {
      const forced =
        f.rmemMax !== null && o.bufferSize > f.rmemMax
          ? `, past ${max}: SO_RCVBUFFORCE with CAP_NET_ADMIN`
          : '';
      return {
        id,
        status: 'ok',
        what: `${asked} is granted in full: the kernel gave ${granted} bytes${forced}`,
      };
    }
    return {
      id,
      status: 'warn',
      what: `${asked} is capped: the kernel gave ${granted} bytes (half of it usable) because of ${max}; bursts may overrun it (ct-record counts what is lost)`,
      fix,
    };
  }
  if (f.euid === 0 || f.netAdmin === true) {
    return {
      id,
      status: 'ok',
      what: `${asked} is forced past ${max} with SO_RCVBUFFORCE (CAP_NET_ADMIN)`,
    };
  }
  if (f.rmemMax !== null && o.bufferSize <= f.rmemMax) {
    return { id, status: 'ok', what: `${asked} fits within ${max}` };
  }
  return {
    id,
    status: 'warn',
    what: `${asked} exceeds ${max} and without CAP_NET_ADMIN it cannot be forced: the kernel would cap it; bursts may overrun it (ct-record counts what is lost)`,
    fix,
  };
}

/** Same meaning as the report's warning (analyzer/core/coverage.ts), said before recording. */
function sysctlFinding(id: 'timestamp' | 'acct', value: number | null): Finding {
  const knob = `nf_conntrack_${id}`;
  const fix = `sysctl -w net.netfilter.${knob}=1`;
  if (value === 1) {
    return {
      id,
      status: 'ok',
      what:
        id === 'timestamp'
          ? `${knob}=1: flows carry their kernel start and end times`
          : `${knob}=1: flows carry packet and byte counts`,
    };
  }
  if (value === null) {
    return { id, status: 'warn', what: `${knob} cannot be read (nf_conntrack not loaded?)`, fix };
  }
  return {
    id,
    status: 'warn',
    what:
      id === 'timestamp'
        ? `${knob}=${value}: last-seen times will be when events arrived (an ended flow is reported 10–40 s late)`
        : `${knob}=${value}: flows will carry no packet or byte counts`,
    fix,
  };
}

/** Every finding, in the order they are printed. Pure: the facts are gathered by the caller. */
export function evaluatePreflight(
  facts: PreflightFacts,
  live: LiveFacts,
  opts: PreflightOptions,
): Finding[] {
  return [
    moduleFinding(facts),
    privilegesFinding(facts),
    userFinding(facts, live, opts),
    addonFinding(live),
    eventsFinding(facts, opts),
    trackingFinding(facts, live, opts),
    rmemFinding(facts, live, opts),
    sysctlFinding('timestamp', facts.timestamp),
    sysctlFinding('acct', facts.acct),
  ];
}

/** Where the facts come from; tests replace the proc tree and the live parts. */
