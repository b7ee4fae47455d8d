// conntrack's `-o ktimestamp` fields, `[start=…]` and `[stop=…]`, read as µs since the epoch.

/**
 * The kernel's flow timestamps as conntrack printed them. libnetfilter_conntrack writes each
 * with ctime(3), minus its newline: `[start=Sun Dec  6 08:47:16 2026]`, whole seconds, in the
 * capturing process's local time zone, which the text does not name.
 */
export interface KernelTimes {
  /** CTA_TIMESTAMP_START: when the kernel confirmed the flow. */
  start: number | undefined;
  /** CTA_TIMESTAMP_STOP: when the kernel destroyed it (DESTROY events only). */
  stop: number | undefined;
  /** The line without the two fields, for the ordinary parser. */
  rest: string;
}

const FIELD = /\[(start|stop)=([^\]]*)\]/g;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** ctime(3)'s "%.3s %.3s%3d %.2d:%.2d:%.2d %d". */
const CTIME = /^([A-Z][a-z]{2}) ([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})$/;

/** Whether a line may hold a ktimestamp field: a cheap test before any regular expression. */
export function hasKernelTimes(line: string): boolean {
  return line.includes('[start=') || line.includes('[stop=');
}

/**
 * Takes `[start=…]` and `[stop=…]` out of a line. The times are read as UTC: conntrack printed
 * them in its own time zone and does not say which, so a capture made with TZ=UTC (or on a
 * host that runs in UTC, as servers usually do) is read exactly. Returns why not, as a string,
 * for a field that is not a ctime date or that appears twice.
 */
export function takeKernelTimes(line: string): KernelTimes | string {
  let start: number | undefined;
  let stop: number | undefined;
  let why: string | undefined;
  const rest = line.replace(FIELD, (_all, key: string, text: string) => {
    const us = ctimeUs(text);
    if (typeof us === 'string') why ??= `[${key}=${text}] ${us}`;
    else if ((key === 'start' ? start : stop) !== undefined) why ??= `[${key}=…] twice`;
    else if (key === 'start') start = us;
    else stop = us;
    return ' ';
  });
  return why ?? { start, stop, rest };
}

/** A ctime(3) date read as UTC, in µs since the epoch; or why it is not one. */
export function ctimeUs(text: string): number | string {
  const m = CTIME.exec(text);
  if (m === null) return 'is not a date as conntrack prints it (like "Sun Dec  6 08:47:16 2026")';
  const [, day, mon, d, hh, mm, ss, yyyy] = m as unknown as string[];
  const month = MONTHS.indexOf(mon as string);
  if (month < 0) return `has no month ${mon}`;
  const ms = Date.UTC(Number(yyyy), month, Number(d), Number(hh), Number(mm), Number(ss));
  const at = new Date(ms);
  // Date.UTC rolls "Feb 30" or "25:00" over into the next day or month: not a date ctime prints.
  if (
    at.getUTCFullYear() !== Number(yyyy) ||
    at.getUTCDate() !== Number(d) ||
    at.getUTCHours() !== Number(hh) ||
    Number(ss) > 59
  ) {
    return 'is not a valid date';
  }
  if (DAYS[at.getUTCDay()] !== day)
    return `says ${day}, but that date is a ${DAYS[at.getUTCDay()]}`;
  return ms * 1000;
}
