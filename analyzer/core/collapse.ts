// Source-port collapsing, the one rule: each mode compiled to "ports in [lo, hi] become to".
import { CtError, Exit } from '../../common/errors.js';

/**
 * How TCP/UDP source ports are collapsed before they enter the key (the journal keeps the real
 * port, so any mode can be applied offline):
 * - '1024': ports above 1024 become 1024, 0–1024 stay (the original tool's rule, the default);
 * - 'none': ports stay as they are;
 * - 'range': ports inside [lo, hi] become lo;
 * - 'ephemeral': ports inside the recording host's ip_local_port_range (from each journal's
 *   header) become the range's first port, so well-known client ports (NTP 123, IKE 500,
 *   DHCP 68) keep their real value; lo–hi is the range to use where a journal does not say.
 */
export type Collapse =
  | { kind: '1024' }
  | { kind: 'none' }
  | { kind: 'range'; lo: number; hi: number }
  | { kind: 'ephemeral'; lo: number; hi: number };

export const DEFAULT_COLLAPSE: Collapse = { kind: '1024' };

/** Linux's default net.ipv4.ip_local_port_range: 'ephemeral' where a journal does not record it. */
export const LINUX_EPHEMERAL: Readonly<[number, number]> = [32768, 60999];

/**
 * Every mode as one shape: source ports in [lo, hi] become `to`, others stay. Three numbers and
 * no branch on the kind, so the replay loop can hold them in registers.
 */
export interface CollapseRule {
  readonly lo: number;
  readonly hi: number;
  readonly to: number;
}

/** The rule of a mode ('none' is the empty range [1, 0]). */
export function compileCollapse(mode: Collapse): CollapseRule {
  switch (mode.kind) {
    case '1024':
      return { lo: 1025, hi: 0xffff, to: 1024 };
    case 'none':
      return { lo: 1, hi: 0, to: 0 };
    case 'range':
    case 'ephemeral':
      return { lo: mode.lo, hi: mode.hi, to: mode.lo };
  }
}

/** The source port as it is keyed and shown under a compiled rule (small enough to inline). */
export function collapseSport(rule: CollapseRule, sport: number): number {
  return sport >= rule.lo && sport <= rule.hi ? rule.to : sport;
}

/** The source port as it is keyed and shown under the mode. */
export function collapsePort(mode: Collapse, sport: number): number {
  return collapseSport(compileCollapse(mode), sport);
}

/**
 * The mode for one recording: 'ephemeral' takes the host's recorded ip_local_port_range
 * (`recorded` false when the journal has none and the mode's own range applies).
 */
export function collapseFor(
  mode: Collapse,
  portRange: readonly [number, number] | null,
): { mode: Collapse; recorded: boolean } {
  if (mode.kind !== 'ephemeral') return { mode, recorded: true };
  if (portRange === null || portRange[0] > portRange[1]) return { mode, recorded: false };
  return { mode: { kind: 'ephemeral', lo: portRange[0], hi: portRange[1] }, recorded: true };
}

/** Parses `1024`, `none`, `ephemeral` or `LO-HI` (a port range); a CtError with exit 2 otherwise. */
export function parseCollapse(text: string): Collapse {
  if (text === '1024') return { kind: '1024' };
  if (text === 'none') return { kind: 'none' };
  if (text === 'ephemeral') {
    return { kind: 'ephemeral', lo: LINUX_EPHEMERAL[0], hi: LINUX_EPHEMERAL[1] };
  }
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  if (m && lo <= hi && hi <= 0xffff) return { kind: 'range', lo, hi };
  throw new CtError(
    'EUSAGE',
    `unknown collapsing mode '${text}': use 1024, none, ephemeral or a port range LO-HI such as 32768-60999`,
    { exit: Exit.USAGE },
  );
}

/** The text form parseCollapse reads back. */
export function formatCollapse(mode: Collapse): string {
  return mode.kind === 'range' ? `${mode.lo}-${mode.hi}` : mode.kind;
}
