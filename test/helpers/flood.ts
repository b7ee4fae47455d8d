// The bench's UDP flood generator (bench/flood.c), built for tests that need many new flows fast.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from './netns.js';

const FLOOD_C = fileURLToPath(new URL('../../bench/flood.c', import.meta.url));

/** Compiles bench/flood.c into `dir` (gcc is installed wherever the addon builds). */
export function buildFlood(dir: string): string {
  const out = join(dir, 'flood');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', out, FLOOD_C], { stdio: 'pipe' });
  return out;
}

/** Sends `n` distinct UDP flows from the client to the server (at most `seconds`); returns sent. */
export async function flood(
  topo: Topology,
  binary: string,
  n: number,
  seconds = 20,
): Promise<number> {
  const res = await topo.exec(
    topo.client.ns,
    [binary, topo.server.v4, String(n), String(seconds)],
    {
      timeoutMs: (seconds + 10) * 1000,
    },
  );
  return Number(/sent=(\d+)/.exec(res.stdout)?.[1]);
}
