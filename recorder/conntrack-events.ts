// --enable-events: nf_conntrack_events=1 for the run, so flows older than the recorder report too.
import { readFileSync, writeFileSync } from 'node:fs';
import { CtError, sysCode } from '../common/errors.js';
import { type ConntrackEventsValue, isConntrackEventsValue } from '../native/index.js';

const KNOB = 'net/netfilter/nf_conntrack_events';

/**
 * Sets the sysctl to 1 in this network namespace and returns the function that puts the old
 * value back (a no-op when it already was 1) through `restoreWith` (after a privilege drop only
 * the addon's keeper thread may still write it, and only this sysctl). With the kernel default
 * 2, a flow created before any listener existed never sends an event, not even its DESTROY.
 */
export function enableConntrackEvents(
  proc = '/proc',
  restoreWith?: (value: ConntrackEventsValue) => void,
): { before: number; restore: () => void } {
  const path = `${proc}/sys/${KNOB}`;
  const restoreValue = restoreWith ?? ((v: ConntrackEventsValue) => writeFileSync(path, `${v}\n`));
  let before: number;
  try {
    before = Number(readFileSync(path, 'latin1').trim());
    if (before !== 1) writeFileSync(path, '1\n');
  } catch (err) {
    const code = sysCode(err) ?? 'error';
    const why =
      code === 'ENOENT'
        ? 'the nf_conntrack module is not loaded (modprobe nf_conntrack)'
        : `${code}: run as root in the namespace being recorded`;
    throw new CtError('ESYSCTL', `cannot set net.netfilter.nf_conntrack_events=1: ${why}`, {
      cause: err,
    });
  }
  let restored = before === 1;
  return {
    before,
    restore: () => {
      if (restored) return;
      restored = true;
      try {
        // The kernel only ever shows 0, 1 or 2; anything else is not put back.
        if (!isConntrackEventsValue(before)) throw new Error(`not a value: ${before}`);
        restoreValue(before);
      } catch {
        process.stderr.write(
          `ct-record: WARNING: could not restore net.netfilter.nf_conntrack_events=${before}: set it by hand\n`,
        );
      }
    },
  };
}
