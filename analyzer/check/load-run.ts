// ct-analyze check: the tools a ruleset is loaded with, found once, and each run of them bounded in time, output and process group.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { CtError } from '../../common/errors.js';
import type { RulesetFormat } from './nft-json.js';

/** nft, ip and the iptables tools live in sbin, which an ordinary user's $PATH often lacks. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export const TO_PASS_JSON =
  'or pass the ruleset as JSON instead (`nft -j list ruleset > ruleset.json` on the host that runs it)';

export function defaultToolPath(env = process.env): string {
  return [...(env.PATH ?? '').split(delimiter), ...SBIN].filter(Boolean).join(delimiter);
}

export interface Tools {
  readonly unshare: string;
  readonly nft: string;
  /** iptables-nft-restore or ip6tables-nft-restore, for a save file; else empty. */
  readonly restore: string;
  /** iptables-restore-translate (ip6…), for a save file, when installed; else empty. */
  readonly translate: string;
  /** Empty when iproute2 is missing: no placeholders, and nft names the missing device. */
  readonly ip: string;
}

function findTool(name: string, toolPath: string): string {
  for (const dir of toolPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return '';
}

/** Every tool `format` needs, or the one error that names what to install. */
export function findTools(format: RulesetFormat, toolPath: string): Tools {
  const v6 = format === 'ip6tables' ? '6' : '';
  const wanted: [string, string][] = [
    ['nft', 'nftables'],
    ['unshare', 'util-linux'],
  ];
  const restore = `ip${v6}tables-nft-restore`;
  if (format !== 'nft') wanted.push([restore, 'iptables']);
  const found = new Map(wanted.map(([name]) => [name, findTool(name, toolPath)]));
  const absent = wanted.filter(([name]) => found.get(name) === '');
  if (absent.length > 0) {
    const names = absent.map(([name]) => name).join(', ');
    const packages = [...new Set(absent.map(([, pkg]) => pkg))];
    throw new CtError(
      'ENOLOADER',
      `reading a ${format} ruleset needs ${names}, not found in ${toolPath || '(no path)'}: install the ${packages.join(' and ')} package${packages.length > 1 ? 's' : ''}, ${TO_PASS_JSON}`,
    );
  }
  return {
    unshare: found.get('unshare') ?? '',
    nft: found.get('nft') ?? '',
    restore: format === 'nft' ? '' : (found.get(restore) ?? ''),
    translate: format === 'nft' ? '' : findTool(`ip${v6}tables-restore-translate`, toolPath),
    ip: findTool('ip', toolPath),
  };
}

export interface RunLimits {
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` with `argv` (never through a shell string), in its own process group so that a
 * timeout ends its children with it; stdout beyond the limit stops the run rather than filling memory.
 */
export function runBounded(
  command: string,
  argv: readonly string[],
  opts: RunLimits & { readonly stdinFile?: string; readonly cwd?: string; readonly what: string },
): Promise<RunResult> {
  const stdin = opts.stdinFile === undefined ? 'ignore' : openSync(opts.stdinFile, 'r');
  return new Promise<RunResult>((resolvePromise, reject) => {
    const child = spawn(command, argv, {
      stdio: [stdin, 'pipe', 'pipe'],
      detached: true,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      env: { PATH: [dirname(command), ...SBIN, '/usr/bin', '/bin'].join(delimiter), LC_ALL: 'C' },
    });
    if (typeof stdin === 'number') closeSync(stdin);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let fault: CtError | undefined;
    const stop = (why: CtError) => {
      fault ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {}
    };
    const timer = setTimeout(
      () =>
        stop(
          new CtError(
            'ERULELOAD',
            `${opts.what} took over ${opts.timeoutMs} ms and was stopped: try again on a less busy machine, ${TO_PASS_JSON}`,
          ),
        ),
      opts.timeoutMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > opts.maxOutputBytes) {
        stop(
          new CtError(
            'ERULELOAD',
            `${opts.what} printed over ${opts.maxOutputBytes} bytes and was stopped: the ruleset is too large to read`,
          ),
        );
      } else out.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      errBytes += chunk.length;
      if (errBytes < 1024 * 1024) err.push(chunk);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CtError('ERULELOAD', `cannot start ${command}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (fault !== undefined) return reject(fault);
      const stdout = Buffer.concat(out).toString('utf8');
      resolvePromise({ code, stdout, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/**
 * Placeholders first (each `ip link add NAME type veth`: veth loads in a user namespace where
 * dummy cannot be autoloaded), then the load command, then the listing. The script is constant:
 * the user's path only ever travels as an argument.
 */
const SCRIPT = [
  'ip=$1; nft=$2; then=$3; n=$4; shift 4',
  'while [ "$n" -gt 0 ]; do "$ip" link add "$1" type veth >/dev/null 2>&1 || :; shift; n=$((n-1)); done',
  '"$@" || exit $?',
  // `all` in one transaction (one nft each for 400 files took 10 s); where nft refuses it, each
  // file alone, so that one it refuses leaves the others (and the ruleset) loaded.
  'if [ -n "$then" ] && ! "$nft" -f "$then/all" 2>/dev/null; then',
  '  for f in "$then"/*.nft; do [ -e "$f" ] && { "$nft" -f "$f" || :; }; done',
  'fi',
  'exec "$nft" -j list ruleset',
].join('\n');

export interface NamespaceRun extends RunLimits {
  readonly tools: Tools;
  /** A plain new netns (root), else a user+network namespace (anyone). */
  readonly privileged: boolean;
  /** Interfaces to create before loading. */
  readonly devices: readonly string[];
  /** nft's or the restore tool's argv. */
  readonly load: readonly string[];
  readonly stdinFile?: string;
  readonly cwd: string;
  /**
   * A private directory of what nft loads after the load: its file `all` in one transaction,
   * else (nft refused it) each of its `*.nft` files alone, in name order.
   */
  readonly addDir?: string;
}

/** One throwaway namespace: placeholders, the load, files added after it, `nft -j list ruleset`; gone when it exits. */
export async function runInNamespace(run: NamespaceRun): Promise<RunResult> {
  const ns = run.privileged ? ['--net'] : ['--user', '--map-root-user', '--net'];
  const devices = run.tools.ip === '' ? [] : run.devices;
  const argv = [
    ...ns,
    '--',
    '/bin/sh',
    '-c',
    SCRIPT,
    'ct-ruleset',
    run.tools.ip,
    run.tools.nft,
    run.addDir ?? '',
    String(devices.length),
    ...devices,
    ...run.load,
  ];
  const result = await runBounded(run.tools.unshare, argv, {
    ...run,
    what: 'loading the ruleset in a throwaway namespace',
  });
  if (result.code !== 0 && /^unshare: /m.test(result.stderr)) {
    throw namespaceError(result.stderr, run.privileged);
  }
  return result;
}

function namespaceError(stderr: string, privileged: boolean): CtError {
  const what = privileged ? 'a network namespace' : 'a user and network namespace';
  const fix = privileged
    ? 'run where CAP_SYS_ADMIN is granted (not in a restricted container)'
    : 'allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0) or run as root';
  const said = stderr.trim().split('\n')[0];
  return new CtError(
    'ENOLOADER',
    `cannot create ${what} to load the ruleset in (${said}): ${fix}, ${TO_PASS_JSON}`,
  );
}
