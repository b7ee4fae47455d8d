// The kernel's drop counter of one netlink socket: the Drops column of /proc/net/netlink.
import { readFileSync } from 'node:fs';

/**
 * Finds the row whose Inode is `inode` and returns its Drops (events the kernel could not queue
 * to that socket); undefined when the row or the columns are missing.
 */
export function parseNetlinkDrops(text: string, inode: number): number | undefined {
  const lines = text.split('\n');
  const head = (lines[0] ?? '').trim().split(/\s+/);
  const dropsCol = head.indexOf('Drops');
  const inodeCol = head.indexOf('Inode');
  if (dropsCol < 0 || inodeCol < 0) return undefined;
  for (const line of lines.slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (Number(cols[inodeCol]) === inode) {
      const drops = Number(cols[dropsCol]);
      return Number.isSafeInteger(drops) ? drops : undefined;
    }
  }
  return undefined;
}

/** Reads the counter for a socket of this process's network namespace. */
export function readNetlinkDrops(inode: number, path = '/proc/net/netlink'): number | undefined {
  try {
    return parseNetlinkDrops(readFileSync(path, 'latin1'), inode);
  } catch {
    return undefined;
  }
}
