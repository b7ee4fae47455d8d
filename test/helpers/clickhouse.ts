// A throwaway ClickHouse server for tests: Debian's clickhouse-server as an ordinary process in a temp dir, over HTTP.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The packaged server config: the test overrides every path and port it uses. */
export const CLICKHOUSE_CONFIG = '/etc/clickhouse-server/config.xml';
export const CLICKHOUSE_INSTALL = 'apt-get install clickhouse-server';

function executable(path: string): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const path = dir === '' ? undefined : executable(join(dir, name));
    if (path !== undefined) return path;
  }
  return undefined;
}

/**
 * The server binary (CT_CLICKHOUSE_SERVER, else clickhouse-server on the PATH or in /usr/sbin),
 * or why there is none: the sentence a skip prints.
 */
export function findClickHouse(env = process.env): { server: string } | { reason: string } {
  const given = env.CT_CLICKHOUSE_SERVER;
  const server =
    given === undefined || given === '' ? onPath('clickhouse-server') : executable(given);
  if (server === undefined) {
    return {
      reason: `ClickHouse test: ${given || 'clickhouse-server'} is not installed (Debian: ${CLICKHOUSE_INSTALL}; the test starts its own server as an ordinary process, no service and no root needed)`,
    };
  }
  try {
    accessSync(CLICKHOUSE_CONFIG, constants.R_OK);
  } catch {
    return {
      reason: `ClickHouse test: ${CLICKHOUSE_CONFIG} is missing (Debian: ${CLICKHOUSE_INSTALL})`,
    };
  }
  return { server };
}

/**
 * CI must run the ClickHouse tests: there a skip would pass a suite that never ran them.
 * .ci/run sets CT_REQUIRE_CLICKHOUSE=1 (it installs the server); CI=true says the same.
 */
export function clickhouseRequired(env = process.env): boolean {
  return env.CT_REQUIRE_CLICKHOUSE === '1' || env.CI === 'true';
}

/** A free TCP port on loopback (closed again: the server binds it a moment later). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface ClickHouse {
  /**
   * Runs one statement (SQL in the body) in the database (default: `default`); the response
   * text, or an Error with ClickHouse's.
   */
  query(sql: string, database?: string): Promise<string>;
  /** `INSERT INTO table FORMAT JSONEachRow` with the rows in the body. */
  insertJsonEachRow(table: string, rows: string | Buffer, database?: string): Promise<void>;
  /** `SELECT version()`, e.g. 18.16.1. */
  readonly version: string;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a server in a fresh temp dir on free ports and waits until it answers. It is stopped
 * by stop(), at the test's teardown, and when this process exits however it exits; where
 * setpriv exists the kernel also kills it if this process dies first (--pdeathsig).
 */
export async function startClickHouse(
  server: string,
  t: { teardown(fn: () => unknown): void },
): Promise<ClickHouse> {
  const dir = mkdtempSync(join(tmpdir(), `ct-clickhouse-${process.pid}-`));
  mkdirSync(join(dir, 'tmp'));
  const [http, tcp, interserver] = [await freePort(), await freePort(), await freePort()];
  const args = [
    `--config-file=${CLICKHOUSE_CONFIG}`,
    '--',
    `--path=${dir}/`,
    `--tmp_path=${dir}/tmp/`,
    `--user_files_path=${dir}/user_files/`,
    `--format_schema_path=${dir}/format_schemas/`,
    `--logger.log=${dir}/log`,
    `--logger.errorlog=${dir}/err`,
    `--http_port=${http}`,
    `--tcp_port=${tcp}`,
    `--interserver_http_port=${interserver}`,
    // Longer than fetch keeps an idle connection (4 s): a request never races the server's
    // close of an idle one (its default is 3 s), which fails as "other side closed".
    '--keep_alive_timeout=60',
  ];
  const setpriv = onPath('setpriv');
  const child: ChildProcess =
    setpriv === undefined
      ? spawn(server, args, { stdio: 'ignore' })
      : spawn(setpriv, ['--pdeathsig', 'KILL', server, ...args], { stdio: 'ignore' });
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  const killAtExit = () => {
    if (!exited) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAtExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    process.removeListener('exit', killAtExit);
    rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(stop);

  const base = `http://127.0.0.1:${http}/`;
  const post = async (url: string, body: string | Buffer): Promise<string> => {
    const res = await fetch(url, { method: 'POST', body });
    const text = await res.text();
    if (!res.ok) throw new Error(`ClickHouse: ${text.trim()}`);
    return text;
  };
  const db = (database: string | undefined) =>
    database === undefined ? '' : `database=${encodeURIComponent(database)}&`;
  const query = (sql: string, database?: string) => post(`${base}?${db(database)}`, sql);
  const insertJsonEachRow = async (table: string, rows: string | Buffer, database?: string) => {
    // best_effort: the export's RFC 3339 times (fraction and Z) into a DateTime column.
    const q = encodeURIComponent(`INSERT INTO ${table} FORMAT JSONEachRow`);
    await post(`${base}?${db(database)}query=${q}&date_time_input_format=best_effort`, rows);
  };

  // Up to 30 s: a cold start on a busy 2-core machine; it is ~1 s when idle.
  const deadline = Date.now() + 30_000;
  let version: string | undefined;
  while (version === undefined) {
    if (exited) {
      const err = readTail(join(dir, 'err'));
      await stop();
      throw new Error(`clickhouse-server exited at start: ${err}`);
    }
    try {
      version = (await query('SELECT version()')).trim();
    } catch (e) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`clickhouse-server did not answer on port ${http} within 30 s: ${e}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { query, insertJsonEachRow, version, stop };
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000);
  } catch {
    return '(no error log)';
  }
}
