// Time slicing (--since, --until): which events of a journal a report keeps, by event time.

import { CtError, Exit } from '../../common/errors.js';

/** Inclusive bounds in µs since the epoch; null: unbounded on that side. */
export interface TimeWindow {
  since: number | null;
  until: number | null;
}

export const NO_WINDOW: TimeWindow = { since: null, until: null };

const UNIT_US: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86400e6 };
const RELATIVE = /^(?:\d+(?:\.\d+)?[smhd])+$/;
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * A time as the user writes it, in µs since the epoch: `now`; a relative span meaning that long
 * before `nowUs` (journalctl's "ago": `90s`, `30m`, `2h`, `1d`, `1h30m`); or ISO 8601
 * (`2026-11-27`, `2026-11-27T07:39:43.692Z`, `2026-11-27 07:39:43+01:00`). An ISO time without a
 * zone is UTC, the zone every report prints. CtError (usage) for anything else.
 */
export function parseTime(text: string, nowUs: number): number {
  const s = text.trim();
  if (s === 'now') return nowUs;
  if (RELATIVE.test(s)) {
    let us = 0;
    for (const m of s.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) {
      us += Number(m[1]) * (UNIT_US[m[2] as string] as number);
    }
    return Math.round(nowUs - us);
  }
  const m = ISO.exec(s);
  if (m !== null) {
    const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
    const z = zone.toUpperCase() === 'Z' ? 'Z' : zone.replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
    const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${sec}${z}`);
    // Date.parse rolls 2026-02-30 over to March: a date that does not exist is a typo.
    const back = new Date(ms + (z === 'Z' ? 0 : offsetMs(z)));
    if (Number.isFinite(ms) && back.getUTCDate() === Number(d) && ms >= 0) {
      return ms * 1000 + Number(frac.padEnd(6, '0'));
    }
  }
  throw new CtError(
    'EUSAGE',
    `cannot read the time "${text}": give an ISO 8601 time (2026-11-27T07:39:43Z, UTC when no zone is given) or a span before now (90s, 30m, 2h, 1d)`,
    { exit: Exit.USAGE },
  );
}

function offsetMs(zone: string): number {
  const sign = zone.startsWith('-') ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
}

/** The window of --since/--until; CtError (usage) when it ends before it starts. */
export function makeWindow(since: string | undefined, until: string | undefined, nowUs: number) {
  const w: TimeWindow = {
    since: since === undefined ? null : parseTime(since, nowUs),
    until: until === undefined ? null : parseTime(until, nowUs),
  };
  if (w.since !== null && w.until !== null && w.until < w.since) {
    throw new CtError(
      'EUSAGE',
      `--until ${until} is before --since ${since}: the window would be empty; swap them`,
      { exit: Exit.USAGE },
    );
  }
  return w;
}

export function isWindowed(w: TimeWindow): boolean {
  return w.since !== null || w.until !== null;
}

/** The event's time is inside the window (both bounds inclusive, like journalctl's). */
export function inWindow(w: TimeWindow, time: number): boolean {
  return (w.since === null || time >= w.since) && (w.until === null || time <= w.until);
}
