// ct-record --check: what would make a recording incomplete in this namespace, with a fix for each.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { checkAddon, joinNetns, type PasswdEntry } from '../native/index.js';
import {
  evaluatePreflight,
  type Finding,
  type FindingStatus,
  inactive,
  type LiveFacts,
  type Outcome,
  type PreflightFacts,
  type PreflightOptions,
} from './preflight-findings.js';
import { DEFAULT_USER, lookupUser } from './privileges.js';
import { enableTracking, type TrackingTable } from './tracking.js';
import { probeTracking, type TrackingProbe } from './tracking-probe.js';

const CAP_NET_ADMIN = 12n;
const NF = 'sys/net/netfilter';

function readInt(path: string): number | null {
  try {
    const text = readFileSync(path, 'latin1').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

function readNetAdmin(proc: string): boolean | null {
  try {
    const hex = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(readFileSync(`${proc}/self/status`, 'latin1'));
    return hex === null ? null : ((BigInt(`0x${hex[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n;
  } catch {
    return null;
  }
}

export function readPreflightFacts(
  proc = '/proc',
  sys = '/sys',
  euid: number = process.geteuid?.() ?? 0,
): PreflightFacts {
  let netns = 'unknown';
  try {
    netns = readlinkSync(`${proc}/self/ns/net`);
  } catch {
    // Said as unknown rather than guessed.
  }
  return {
    netns,
    // Built in or a module, it shows in /sys/module; its sysctls show once it is loaded.
    conntrackLoaded:
      existsSync(`${sys}/module/nf_conntrack`) || existsSync(`${proc}/${NF}/nf_conntrack_max`),
    euid,
    netAdmin: readNetAdmin(proc),
    events: readInt(`${proc}/${NF}/nf_conntrack_events`),
    timestamp: readInt(`${proc}/${NF}/nf_conntrack_timestamp`),
    acct: readInt(`${proc}/${NF}/nf_conntrack_acct`),
    rmemMax: readInt(`${proc}/sys/net/core/rmem_max`),
    count: readInt(`${proc}/${NF}/nf_conntrack_count`),
  };
}

/** `8 MiB` for whole MiB and KiB, else bytes. */
export interface PreflightSources {
  proc?: string;
  sys?: string;
  euid?: number;
  /** Loads the addon and returns its path; throws when it cannot. */
  loadAddon?: () => string;
  probe?: (bufferSize: number) => Promise<TrackingProbe>;
  enableTracking?: () => TrackingTable;
  /** The passwd lookup (default: the addon's getpwnam). */
  lookupUser?: (name: string) => PasswdEntry | null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function outcome<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    return { ok: false, error: message(err) };
  }
}

/**
 * Gathers the facts and runs the live probes: the addon, a probe flow on loopback (needs
 * CAP_NET_ADMIN), and with --enable-tracking, when tracking is off, the same probe with the
 * run's table in place (added, then removed). Writes no journal.
 */
export async function runPreflight(
  opts: PreflightOptions,
  src: PreflightSources = {},
): Promise<{ facts: PreflightFacts; findings: Finding[] }> {
  const facts = readPreflightFacts(src.proc, src.sys, src.euid);
  const load = src.loadAddon ?? (() => checkAddon());
  const probe = src.probe ?? ((size: number) => probeTracking(size));
  const live: LiveFacts = { addon: await outcome(async () => load()) };
  if (facts.euid === 0) {
    const find = src.lookupUser ?? lookupUser;
    live.account = await outcome(async () => find(opts.user ?? DEFAULT_USER));
  }
  if (facts.conntrackLoaded) {
    live.probe = await outcome(() => probe(opts.bufferSize));
    const off = live.probe.ok && live.probe.value.families.some(inactive);
    if (off && opts.enableTracking) {
      live.withTracking = await outcome(async () => {
        const table = (src.enableTracking ?? enableTracking)();
        try {
          return await probe(opts.bufferSize);
        } finally {
          await table.stop();
        }
      });
    }
  }
  return { facts, findings: evaluatePreflight(facts, live, opts) };
}

const LABEL: Record<FindingStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

/** 0 when nothing failed: the recording would be complete (warnings say how to make it better). */
export function preflightExit(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.status === 'fail') ? 1 : 0;
}

/**
 * The command that runs a fix inside the namespace `--netns SPEC` names: `ip netns exec NAME`
 * for a name, `nsenter --net=PATH` for a path; undefined for ct-record's own namespace.
 */
export function netnsRunner(spec: string | undefined): string | undefined {
  if (spec === undefined) return undefined;
  return spec.includes('/') ? `nsenter --net=${spec}` : `ip netns exec ${spec}`;
}

/** `sysctl -w`, `ip link` and `nft` commands of a fix, run inside the checked namespace. */
function inNamespace(fix: string, runner: string | undefined): string {
  if (runner === undefined) return fix;
  return fix.replace(/(^|, or |: |\n)(sysctl -w |ip link |nft )/g, `$1${runner} $2`);
}

/**
 * One line per finding, its fix below it, then a summary line. With `runner` (netnsRunner of
 * --netns) the fixes' commands are written to run in that namespace.
 */
export function formatPreflight(
  netns: string,
  findings: readonly Finding[],
  runner?: string,
): string {
  const lines = [`ct-record --check: network namespace ${netns}`];
  for (const f of findings) {
    lines.push(`${LABEL[f.status]} ${f.what}`);
    if (f.fix !== undefined) {
      const [first, ...rest] = inNamespace(f.fix, runner).split('\n');
      lines.push(`     fix: ${first}`, ...rest.map((l) => `          ${l}`));
    }
  }
  const n = (s: FindingStatus) => findings.filter((f) => f.status === s).length;
  const tally = `${n('fail')} failed, ${n('warn')} warnings, ${n('ok')} ok`;
  lines.push(
    preflightExit(findings) === 0
      ? `recording would be complete (${tally})`
      : `recording would be incomplete (${tally}): apply the fixes above`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * ct-record --check: joins the namespace that would be recorded, checks it, prints the findings
 * to `out`; returns the exit status (preflightExit).
 */
export async function runCheck(
  opts: PreflightOptions & { netns?: string },
  out: { write(text: string): unknown } = process.stdout,
  src: PreflightSources = {},
): Promise<number> {
  if (opts.netns !== undefined) joinNetns(opts.netns);
  const { facts, findings } = await runPreflight(opts, src);
  out.write(formatPreflight(facts.netns, findings, netnsRunner(opts.netns)));
  return preflightExit(findings);
}
