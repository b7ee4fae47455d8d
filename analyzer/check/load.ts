// ct-analyze check: a ruleset file (nft, `nft list ruleset`, iptables-save, or nft's JSON) read back as nft's JSON, loaded by nft itself in a throwaway namespace.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { CtError } from '../../common/errors.js';
import { bindingSkeleton, findBindings, graftBindings, resolveBindings } from './load-anon.js';
import {
  blankRefused,
  type NftError,
  nonFilterRefusals,
  parseNftErrors,
  scanDevices,
} from './load-nft-errors.js';
import {
  defaultToolPath,
  findTools,
  type RunLimits,
  runBounded,
  runInNamespace,
  TO_PASS_JSON,
  type Tools,
} from './load-run.js';
import {
  prepareSaved,
  quoteComments,
  restoreIcmpv6,
  savedRules,
  spliceUntranslated,
  untranslatedRules,
} from './load-saved.js';
import { detectFormat, type NftJson, parseNftJson, type RulesetFormat } from './nft-json.js';

export type { NftJson, NftObject, RulesetFormat } from './nft-json.js';

export interface LoadOptions {
  /** Overrides what the file's text says it is (an iptables-save file read as ip6tables…). */
  readonly format?: RulesetFormat;
  /** Where nft, unshare, ip and the iptables tools are looked for; default $PATH plus the sbin dirs. */
  readonly toolPath?: string;
  /** A plain new netns (root) or a user+network namespace (anyone); default: root or not. */
  readonly privileged?: boolean;
  /** Each child run is killed, with its children, after this long. */
  readonly timeoutMs?: number;
  /** nft's JSON beyond this is refused rather than held in memory. */
  readonly maxOutputBytes?: number;
}

/** How the JSON was made: given, nft -f, translated to nft first, or through iptables-nft-restore. */
export type LoadedVia = 'json' | 'nft' | 'iptables-restore-translate' | 'iptables-nft-restore';

export interface LoadedRuleset {
  readonly json: NftJson;
  readonly format: RulesetFormat;
  readonly via: LoadedVia;
  /** Devices created in the namespace so that `iif`, `oif`, `devices =` could load. */
  readonly placeholders: readonly string[];
  /**
   * What the kernel would not load and was left out, one line each (a flowtable, an nfacct
   * match…), and each anonymous chain (`jump { … }`) left as text, with why.
   */
  readonly notLoaded: readonly string[];
  /**
   * iptables-save rules iptables-restore-translate cannot translate (`-m recent`…), one line
   * each: they are in the JSON as iptables-nft-restore loads them, with `xt` matches, among
   * translated ones; absent when there are none.
   */
  readonly xtRules?: readonly string[];
  /**
   * Child runs it took (0 for JSON without anonymous chains): a translation, and namespaces
   * (unshare, sh, nft twice, ip per device); one more per level of anonymous chains.
   */
  readonly runs: number;
  readonly elapsedMs: number;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;
/** Reruns with more placeholder devices, then reruns without what the kernel refused. */
const MAX_DEVICE_ROUNDS = 3;
const MAX_RUNS = 6;

interface Context extends RunLimits {
  readonly path: string;
  readonly file: string;
  readonly tools: Tools;
  readonly privileged: boolean;
  /** A private directory for rewritten or translated text, made on first use. */
  tmp?: string;
  runs: number;
}

/** Reads `path` as nft's JSON: passed through when it is JSON, else loaded by nft in a namespace. */
export async function loadRuleset(path: string, options: LoadOptions = {}): Promise<LoadedRuleset> {
  const started = performance.now();
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CtError('ERULESET', `cannot read the ruleset ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const format = options.format ?? detectFormat(text);
  const since = () => Math.round((performance.now() - started) * 10) / 10;
  if (format === 'nft-json') {
    const given = parseNftJson(text, path);
    const { json, notLoaded, runs } = await loadJsonBindings(given, file, path, options);
    return { json, format, via: 'json', placeholders: [], notLoaded, runs, elapsedMs: since() };
  }
  const ctx: Context = {
    path,
    file,
    tools: findTools(format, options.toolPath ?? defaultToolPath()),
    privileged: options.privileged ?? process.geteuid?.() === 0,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT,
    runs: 0,
  };
  try {
    const loaded = format === 'nft' ? await loadNft(ctx, text) : await loadSaved(ctx, text);
    return { ...loaded, format, runs: ctx.runs, elapsedMs: since() };
  } finally {
    if (ctx.tmp !== undefined) rmSync(ctx.tmp, { recursive: true, force: true });
  }
}

/**
 * nft's JSON lists a binding (`jump { … }`) as nft text, and nft cannot read that JSON back
 * ("Unexpected expr array element of type string", 1.0.6): where nft and a namespace are at
 * hand, what the bodies may name is loaded alone (tables, chains, sets) with each body as a
 * chain, and those chains grafted in. Without them the bindings stay text (undetermined), said once.
 */
async function loadJsonBindings(
  json: NftJson,
  file: string,
  path: string,
  options: LoadOptions,
): Promise<{ json: NftJson; notLoaded: string[]; runs: number }> {
  const n = findBindings(json).length;
  if (n === 0) return { json, notLoaded: [], runs: 0 };
  let round = 0;
  const unresolved = (err: unknown) => {
    if (!(err instanceof CtError)) throw err;
    // The JSON itself is read: only its bindings stay undetermined, and the line says why.
    const what =
      n === 1
        ? '1 anonymous chain (jump { … }) left as text, its flows'
        : `${n} anonymous chains (jump { … }) left as text, their flows`;
    const why = (err.message.split('\n')[0] ?? '').replace(`, ${TO_PASS_JSON}`, '');
    const line = `${what} undetermined: nft's JSON lists them as nft text, which only nft in a throwaway namespace reads (${why})`;
    return { json, notLoaded: [line], runs: round };
  };
  let tools: Tools;
  try {
    tools = findTools('nft', options.toolPath ?? defaultToolPath());
  } catch (err) {
    return unresolved(err);
  }
  const ctx: Context = {
    path,
    file,
    tools,
    privileged: options.privileged ?? process.geteuid?.() === 0,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT,
    runs: 0,
  };
  try {
    const skeleton = privateFile(ctx, 'skeleton.json', JSON.stringify(bindingSkeleton(json)));
    const made = await resolveBindings(
      json,
      (files) => {
        round += 1;
        return runInNamespace({
          ...ctx,
          devices: [],
          load: [tools.nft, '-j', '-f', skeleton],
          cwd: dirname(file),
          addDir: privateDir(ctx, `anon-${round}`, files),
        });
      },
      (out) => graftBindings(json, parseNftJson(out, `nft -j list ruleset of ${path}`)),
    );
    return { json: made.json, notLoaded: [...made.notLoaded], runs: made.runs };
  } catch (err) {
    return unresolved(err);
  } finally {
    if (ctx.tmp !== undefined) rmSync(ctx.tmp, { recursive: true, force: true });
  }
}

type Loaded = Pick<LoadedRuleset, 'json' | 'via' | 'placeholders' | 'notLoaded' | 'xtRules'>;

function privateFile(ctx: Context, name: string, text: string): string {
  ctx.tmp ??= mkdtempSync(join(tmpdir(), 'ct-ruleset-'));
  const at = join(ctx.tmp, name);
  writeFileSync(at, text, { mode: 0o600 });
  return at;
}

/** A private directory of files (name → text), for a namespace run to load. */
function privateDir(ctx: Context, name: string, files: ReadonlyMap<string, string>): string {
  ctx.tmp ??= mkdtempSync(join(tmpdir(), 'ct-ruleset-'));
  const at = join(ctx.tmp, name);
  mkdirSync(at, { mode: 0o700 });
  for (const [file, text] of files) writeFileSync(join(at, file), text, { mode: 0o600 });
  return at;
}

/**
 * nft text: placeholders for the devices it names; on "Interface does not exist" more of them;
 * on a flowtable, ct helper or secmark the kernel refuses, the same text with it and its uses
 * blanked out (lines kept).
 */
async function loadNft(ctx: Context, text: string): Promise<Loaded> {
  let devices = scanDevices(text);
  let current = text;
  let loadFile = ctx.file;
  let deviceRounds = 0;
  const notLoaded: string[] = [];
  for (;;) {
    // nft resolves `./x` against its working directory and `x` against -I (measured, nft 1.0.6).
    const dir = dirname(ctx.file);
    const result = await runInNamespace({
      ...ctx,
      devices,
      load: [ctx.tools.nft, '-I', dir, '-f', loadFile],
      cwd: dir,
    });
    ctx.runs += 1;
    if (result.code === 0) {
      const parse = (out: string) => parseNftJson(out, `nft -j list ruleset of ${ctx.path}`);
      const first = parse(result.stdout);
      if (findBindings(first).length === 0) {
        return { json: first, via: 'nft', placeholders: devices, notLoaded };
      }
      // nft lists a `jump { … }` as its text: the same load again, with each body a named chain.
      let round = 0;
      const made = await resolveBindings(
        first,
        (files) => {
          round += 1;
          return runInNamespace({
            ...ctx,
            devices,
            load: [ctx.tools.nft, '-I', dir, '-f', loadFile],
            cwd: dir,
            addDir: privateDir(ctx, `anon-${round}`, files),
          });
        },
        parse,
      );
      ctx.runs += made.runs;
      const all = [...notLoaded, ...made.notLoaded];
      return { json: made.json, via: 'nft', placeholders: devices, notLoaded: all };
    }
    const stderr = result.stderr.split(loadFile).join(ctx.file);
    const errors = parseNftErrors(stderr);
    const missing = errors.flatMap((e) => (e.missingDevice ? [e.missingDevice] : []));
    const refused = nonFilterRefusals(errors, ctx.file);
    const other = errors.filter((e) => !e.missingDevice && !refused.includes(e));
    // A name may come through a define or a set, where the first scan does not look; and nft's
    // evaluation stops early, so a file with many devices can name them over a few runs.
    const guessed = missing.length > 0 ? scanDevices(current, true) : [];
    const fresh = [...new Set([...missing, ...guessed])].filter((d) => !devices.includes(d));
    if (fresh.length > 0 && deviceRounds < MAX_DEVICE_ROUNDS && other.length === 0) {
      deviceRounds += 1;
      devices = [...devices, ...fresh];
      continue;
    }
    if (refused.length === 0 || other.length > 0 || missing.length > 0 || ctx.runs >= MAX_RUNS) {
      throw nftRefused(ctx.path, stderr, errors, ctx.privileged);
    }
    current = blankRefused(current, refused, notLoaded);
    loadFile = privateFile(ctx, basename(ctx.file), current);
  }
}

/**
 * iptables-save text: translated to nft (native expressions such as `fib daddr type local`
 * instead of opaque `xt` matches); a rule the translator cannot translate is taken, at its
 * place, from what iptables-nft-restore makes of the file; where the translation does not load
 * or does not line up, the whole file goes through iptables-nft-restore, so no rule is missing.
 */
async function loadSaved(ctx: Context, text: string): Promise<Loaded> {
  const prepared = prepareSaved(text);
  const notLoaded = [...prepared.notLoaded];
  // Without `-m tcp` after `-p tcp` (the same match, loaded implicitly), iptables-nft too
  // stores the ports as native expressions rather than an xt match.
  const changed = prepared.forRestore !== text;
  const restoreFrom = changed ? privateFile(ctx, 'restore.rules', prepared.forRestore) : ctx.file;
  const translateFrom =
    prepared.forTranslation === prepared.forRestore
      ? restoreFrom
      : privateFile(ctx, 'translate.rules', prepared.forTranslation);
  // iptables-nft-restore's ruleset, made once: spliced from, or taken whole.
  let restored: NftJson | undefined;
  const restore = async (): Promise<NftJson> => {
    if (restored !== undefined) return restored;
    const result = await runInNamespace({
      ...ctx,
      devices: [],
      load: [ctx.tools.restore],
      stdinFile: restoreFrom,
      cwd: dirname(ctx.file),
    });
    ctx.runs += 1;
    if (result.code !== 0) throw restoreRefused(ctx.path, ctx.tools.restore, result.stderr);
    restored = parseNftJson(result.stdout, `nft -j list ruleset of ${ctx.path}`);
    return restored;
  };
  if (ctx.tools.translate !== '') {
    const translated = await runBounded(ctx.tools.translate, ['-f', translateFrom], {
      ...ctx,
      what: `translating ${ctx.path} with ${basename(ctx.tools.translate)}`,
    });
    ctx.runs += 1;
    // An untranslatable rule comes out as a `# -t table -A …` comment, not as a rule.
    const rules = savedRules(prepared.forTranslation, prepared.fileLine);
    const untranslated = untranslatedRules(translated.stdout, rules);
    if (translated.code === 0 && untranslated !== undefined) {
      const nftFile = privateFile(
        ctx,
        'translated.nft',
        restoreIcmpv6(quoteComments(translated.stdout), prepared.icmpv6),
      );
      const result = await runInNamespace({
        ...ctx,
        devices: [],
        load: [ctx.tools.nft, '-f', nftFile],
        cwd: dirname(ctx.file),
      });
      ctx.runs += 1;
      if (result.code === 0) {
        const json = parseNftJson(result.stdout, `nft -j list ruleset of ${ctx.path}`);
        const via = 'iptables-restore-translate';
        if (untranslated.length === 0) return { json, via, placeholders: [], notLoaded };
        const spliced = spliceUntranslated(json, await restore(), rules, untranslated);
        if (spliced !== undefined) {
          const lines = text.split('\n');
          const xtRules = untranslated.map(
            (r) =>
              `line ${r.line}: no nft translation, read as iptables-nft loads it (xt): ${(lines[r.line - 1] ?? r.text).trim()}`,
          );
          return { json: spliced, via, placeholders: [], notLoaded, xtRules };
        }
      }
    }
  }
  return { json: await restore(), via: 'iptables-nft-restore', placeholders: [], notLoaded };
}

function nftRefused(
  path: string,
  stderr: string,
  errors: readonly NftError[],
  privileged: boolean,
): CtError {
  const said = excerpt(stderr) || '(nft said nothing)';
  // "Could not process rule" is the kernel's refusal, not the file's syntax: a missing module,
  // an object this kernel lacks (secmark without SELinux), a chain priority it does not allow.
  const kernel =
    errors.length > 0 && errors.every((e) => e.message.startsWith('Could not process rule'));
  // Some expressions (`ip dscp set` of OpenWrt's fw4, measured) are EPERM in a user namespace only.
  if (kernel && !privileged && /Operation not permitted/.test(stderr)) {
    return new CtError(
      'ERULELOAD',
      `a user namespace may not load all of the ruleset ${path}:\n${said}\nrun as root (a plain network namespace loads it), ${TO_PASS_JSON}`,
    );
  }
  if (kernel) {
    return new CtError(
      'ERULELOAD',
      `this kernel would not load the ruleset ${path}, though nft reads it:\n${said}\nload it on a kernel that has what it names, ${TO_PASS_JSON}`,
    );
  }
  // nft 1.0.6 raises its netlink send buffer with SO_SNDBUFFORCE only, which a user namespace
  // may not use: a batch over net.core.wmem_default (~200 KB, some 400 rules) cannot be sent.
  if (/Message too long/.test(stderr)) {
    return new CtError(
      'ERULELOAD',
      `the ruleset ${path} is too large for nft to load from a user namespace:\n${said}\nrun as root (a plain network namespace has no such limit), ${TO_PASS_JSON}`,
    );
  }
  // `nft list ruleset` of rules iptables-nft made prints their xt matches, which nft cannot read back.
  if (/unsupported xtables compat expression/.test(stderr)) {
    return new CtError(
      'ERULESYNTAX',
      `nft cannot read back the ruleset ${path}: it lists rules iptables-nft made (xt matches):\n${said}\npass \`iptables-save\` and \`ip6tables-save\` output, ${TO_PASS_JSON}`,
    );
  }
  return new CtError(
    'ERULESYNTAX',
    `nft refused the ruleset ${path}:\n${said}\nfix the lines nft names (\`nft -c -f FILE\` checks them alone), ${TO_PASS_JSON}`,
  );
}

function restoreRefused(path: string, restore: string, stderr: string): CtError {
  const tool = basename(restore);
  const said = excerpt(stderr) || `(${tool} said nothing)`;
  // A match whose module is missing cannot be autoloaded from a user namespace: not the file's fault.
  if (/Couldn't load|No such file or directory|Extension .* revision/.test(stderr)) {
    return new CtError(
      'ERULELOAD',
      `${tool} could not load ${path} in a throwaway namespace:\n${said}\na kernel module it needs is missing or cannot be loaded from a user namespace: run as root once (it loads the xt_ module it names), ${TO_PASS_JSON}`,
    );
  }
  return new CtError('ERULESYNTAX', `${tool} refused the ruleset ${path}:\n${said}`);
}

/** nft prints three lines per error: a ruleset with hundreds of them is shown by its first ones. */
function excerpt(stderr: string, max = 30): string {
  const lines = stderr.trimEnd().split('\n');
  if (lines.length <= max) return lines.join('\n');
  return `${lines.slice(0, max).join('\n')}\n… and ${lines.length - max} more lines`;
}
