// Every CtError code in the sources is listed once in common/errors.ts, with the exit status its call sites use.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CtError, ERRORS, type ErrorCode, Exit, exitOf } from '../../common/errors.js';
import { PACKAGE_ROOT } from '../../common/package.js';

const SOURCE_DIRS = ['common', 'native', 'journal', 'analyzer', 'recorder'];

interface CallSite {
  where: string;
  /** The first argument as written: `'EUSAGE'`, or an expression (`sysCode(err) ?? 'EIO'`). */
  code: string;
  /** `Exit.USAGE`, another expression, or undefined when the call names no exit. */
  exit: string | undefined;
}

/** The text of a call's argument list from `open` (just after its `(`) to its `)`. */
function argumentText(text: string, open: number): string {
  let depth = 1;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) return text.slice(open, i);
    }
  }
  return text.slice(open);
}

/** Every `new CtError(…)` and `new JournalFault(…)` in `text`, with its code and exit. */
function callSites(file: string, text: string): CallSite[] {
  return [...text.matchAll(/new (CtError|JournalFault)\(/g)].map((m) => {
    const args = argumentText(text, (m.index ?? 0) + m[0].length);
    const code = (/^\s*([^,]+?)\s*,/.exec(args)?.[1] ?? args).trim();
    const exit = /\bexit:\s*([\w.]+)/.exec(args)?.[1];
    const line = text.slice(0, m.index).split('\n').length;
    return { where: `${file}:${line}`, code, exit };
  });
}

function sources(): Map<string, string> {
  const out = new Map<string, string>();
  for (const dir of SOURCE_DIRS) {
    for (const entry of readdirSync(join(PACKAGE_ROOT, dir), { recursive: true })) {
      const name = String(entry);
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      out.set(`${dir}/${name}`, readFileSync(join(PACKAGE_ROOT, dir, name), 'utf8'));
    }
  }
  return out;
}

const EXIT_NAMES: Record<string, number> = {
  'Exit.OK': Exit.OK,
  'Exit.RUNTIME': Exit.RUNTIME,
  'Exit.USAGE': Exit.USAGE,
  'Exit.VERSION': Exit.VERSION,
};

t.test('the call-site reader finds codes and exits across lines, quotes and nesting', (t) => {
  const text = [
    "throw new CtError('EUSAGE', `a (b, c) ` + f(1, [2]), { exit: Exit.USAGE });",
    'return new CtError(',
    "  sysCode(err) ?? 'EIO',",
    "  'it said \\'no\\', (really)',",
    '  { cause: err },',
    ');',
    "new JournalFault('ECORRUPT', path, 1, 'why');",
  ].join('\n');
  t.strictSame(callSites('x.ts', text), [
    { where: 'x.ts:1', code: "'EUSAGE'", exit: 'Exit.USAGE' },
    { where: 'x.ts:2', code: "sysCode(err) ?? 'EIO'", exit: undefined },
    { where: 'x.ts:7', code: "'ECORRUPT'", exit: undefined },
  ]);
  t.end();
});

t.test(
  'errors: every literal code thrown is listed, with its exit or its one documented exception',
  (t) => {
    const sites = [...sources()].flatMap(([file, text]) => callSites(file, text));
    const literal = sites.filter((s) => /^'E[A-Z]+'$/.test(s.code));
    t.ok(literal.length >= 80, `the call sites were found (${literal.length} with a literal code)`);
    const unlisted = literal.filter((s) => !Object.hasOwn(ERRORS, s.code.slice(1, -1)));
    t.strictSame(unlisted, [], 'no code outside common/errors.ts');
    const astray = literal.filter((s) => {
      if (s.exit === undefined || !(s.exit in EXIT_NAMES)) return false;
      const entry: { exit: number; also?: { exit: number } } =
        ERRORS[s.code.slice(1, -1) as ErrorCode];
      const exit = EXIT_NAMES[s.exit];
      return exit !== entry.exit && exit !== entry.also?.exit;
    });
    t.strictSame(astray, [], 'no call site exits otherwise than its code is listed with');
    const used = new Set(literal.map((s) => s.code.slice(1, -1)));
    // Codes only ever computed (an errno passed through, a fallback) are not literals anywhere.
    const computed = new Set(['EIO', 'ENETLINK', 'ENETNS', 'ESEND', 'ENOBUFS', 'ECANCELED']);
    t.strictSame(
      Object.keys(ERRORS).filter((c) => !used.has(c) && !computed.has(c)),
      [],
      'no listed code is left over',
    );
    t.end();
  },
);

t.test(
  "errors: a CtError without an exit takes its code's; an errno passed through exits 1",
  (t) => {
    t.equal(new CtError('EUSAGE', 'bad option').exit, Exit.USAGE);
    t.equal(new CtError('EVERSION', 'too new').exit, Exit.VERSION);
    t.equal(new CtError('ECORRUPT', 'damaged').exit, Exit.RUNTIME);
    t.equal(new CtError('EEXIST', 'running', { exit: Exit.USAGE }).exit, Exit.USAGE, 'a site says');
    const errno: string = 'ENOSPC';
    t.equal(new CtError(errno, 'disk full').exit, Exit.RUNTIME);
    t.equal(exitOf('ENOSPC'), Exit.RUNTIME);
    t.equal(exitOf('toString'), Exit.RUNTIME, 'an inherited property is no entry');
    // @ts-expect-error a misspelt code does not compile (npm run typecheck fails if it does)
    t.equal(new CtError('ECORUPT', 'typo').exit, Exit.RUNTIME);
    t.end();
  },
);

t.test('docs: docs/analyze.md lists every code with its exit status and meaning', (t) => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'analyze.md'), 'utf8');
  for (const [code, e] of Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]) {
    const also = 'also' in e ? ` (${e.also.exit} when ${e.also.when})` : '';
    t.ok(doc.includes(`| ${code} | ${e.exit}${also} | ${e.meaning} |`), code);
  }
  t.end();
});
