// Host routes from a journal's checkpoints, kept once each: memory bounded by distinct routes, not checkpoints.
import type { HostRoute, RouteSet } from './format.js';
import { MAX_ROUTES } from './meta-codec.js';
import { Damage } from './validate.js';

/**
 * Distinct routes one journal's checkpoints may bring: 16 sets of the most a set may hold
 * (MAX_ROUTES). Past it the journal is damaged or forged: a flapping route repeats the same
 * few routes, and any more would cost memory with no bound but the file's size.
 */
export const MAX_DISTINCT_ROUTES = 16 * MAX_ROUTES;

/**
 * One object per distinct route (every field), as AddressInterning does for addresses: a
 * journal may repeat a set of 4,096 routes in every checkpoint that changed one of them.
 */
export class RouteInterning {
  readonly #byKey = new Map<string, HostRoute>();

  set(s: RouteSet): RouteSet {
    return { time: s.time, routes: s.routes.map((r) => this.#route(r)) };
  }

  #route(r: HostRoute): HostRoute {
    // Field by field, each delimited: dev and type are the only strings, and dev comes last.
    const key = [
      r.family,
      r.prefix,
      r.table,
      r.metric,
      r.type,
      hex(r.dst),
      r.gateway === undefined ? '-' : hex(r.gateway),
      r.dev === undefined ? '-' : `=${r.dev}`,
    ].join(' ');
    const same = this.#byKey.get(key);
    if (same !== undefined) return same;
    if (this.#byKey.size >= MAX_DISTINCT_ROUTES) {
      throw new Damage(
        `checkpoint routes bring the host's distinct routes past ${MAX_DISTINCT_ROUTES}, more than any host has`,
      );
    }
    this.#byKey.set(key, r);
    return r;
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
