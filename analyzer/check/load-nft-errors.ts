// ct-analyze check: nft's error messages read for what a retry can fix (a missing device, a flowtable the kernel refuses).

/** Linux interface names: under 16 bytes, no slash, colon or space (dev_valid_name). */
/** Words after `iif`/`oif` that are nft's, not a device (`fib saddr . iif oif missing`). */
const NOT_DEVICES = new Set([
  'lo',
  'iif',
  'oif',
  'iifname',
  'oifname',
  'type',
  'exists',
  'missing',
]);
const IFNAME = /^[^/:\s"'{},;$]{1,15}$/;

/** One `FILE:LINE:C1-C2: Error: …` of nft, with the source line it quotes. */
export interface NftError {
  readonly file: string;
  readonly line: number;
  /** 1-based, inclusive, as nft prints them. */
  readonly from: number;
  readonly to: number;
  readonly message: string;
  readonly span: string;
  /** The quoted source line before the span. */
  readonly prefix: string;
  readonly missingDevice?: string;
}

export function parseNftErrors(stderr: string): NftError[] {
  const lines = stderr.split('\n');
  const errors: NftError[] = [];
  lines.forEach((text, i) => {
    const m = /^(.*):(\d+):(\d+)-(\d+): Error: (.*)$/.exec(text);
    if (!m) return;
    const [, file, line, from, to, message] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const source = lines[i + 1] ?? '';
    const span = source.slice(Number(from) - 1, Number(to));
    const name = span.replace(/^"(.*)"$/, '$1');
    const missingDevice =
      message === 'Interface does not exist' && IFNAME.test(name) ? name : undefined;
    errors.push({
      file,
      line: Number(line),
      from: Number(from),
      to: Number(to),
      message,
      span,
      prefix: source.slice(0, Number(from) - 1),
      ...(missingDevice ? { missingDevice } : {}),
    });
  });
  return errors;
}

/** Device names a load will need to exist: `iif`/`oif` values, `device`, `devices = { … }`. */
export function scanDevices(text: string, broad = false): string[] {
  const names = new Set<string>();
  const code = text.replace(/#.*$/gm, '');
  if (broad) {
    // `define wan = eth0` and `iif { eth0, eth1 }`: words that may be devices, given one was.
    for (const m of code.matchAll(/^\s*define\s+\S+\s*=\s*"?([A-Za-z][^\s"{};]*)"?\s*$/gm)) {
      names.add(m[1] ?? '');
    }
    for (const m of code.matchAll(/\b(?:iif|oif)\s+(?:!=\s*)?\{([^}]*)\}/g)) {
      for (const d of (m[1] ?? '').split(',')) names.add(d.trim().replace(/^"(.*)"$/, '$1'));
    }
  }
  for (const m of code.matchAll(/\b(?:iif|oif|device)\s+(?:"([^"\n]+)"|([^\s"{}$;!=]+))/g)) {
    names.add(m[1] ?? m[2] ?? '');
  }
  for (const m of code.matchAll(/\bdevices\s*=\s*\{([^}]*)\}/g)) {
    for (const d of (m[1] ?? '').split(',')) names.add(d.trim().replace(/^"(.*)"$/, '$1'));
  }
  return [...names].filter((n) => IFNAME.test(n) && !NOT_DEVICES.has(n));
}

/** What a refused construct is, when it is one a verdict does not depend on. */
type Refusal =
  | { kind: 'declaration'; what: 'flowtable' | 'ct helper'; keyword: number }
  | { kind: 'statement'; what: 'flowtable' | 'ct helper'; keyword: number };

/**
 * The kernel's ENOENT for a flowtable (no nf_flow_table here) or a ct helper it does not have
 * (OpenWrt's out-of-tree rtsp), and for the `flow add @ft` / `ct helper set "x"` statements
 * that use them: none of them filters a packet, so leaving them out keeps every verdict (a
 * helper's expectations make some later flows "related": the note says it was left out).
 */
function refusalOf(e: NftError): Refusal | undefined {
  if (!/^Could not process rule: No such file or directory$/.test(e.message)) return undefined;
  if (/^flow\s+(?:add|offload)\s+@/.test(e.span)) {
    return { kind: 'statement', what: 'flowtable', keyword: e.from - 1 };
  }
  const set = /\bct\s+helper\s+set\s+$/.exec(e.prefix);
  if (set) return { kind: 'statement', what: 'ct helper', keyword: set.index };
  const declared = /\b(flowtable|ct\s+helper)\s+(?:\S+\s+)*$/.exec(e.prefix);
  if (declared) {
    const what = declared[1] === 'flowtable' ? 'flowtable' : 'ct helper';
    return { kind: 'declaration', what, keyword: declared.index };
  }
  return undefined;
}

/** Whether `e` is a refusal in `file` itself that a rerun without the construct can get past. */
export function isNonFilterRefusal(e: NftError, file: string): boolean {
  return e.file === file && refusalOf(e) !== undefined;
}

/** Blanks each refused construct (spaces, newlines kept, so nft's line numbers stay true). */
export function blankRefused(text: string, refused: readonly NftError[], notes: string[]): string {
  const offsets: number[] = [];
  let at = 0;
  for (const l of text.split('\n')) {
    offsets.push(at);
    at += l.length + 1;
  }
  let out = text;
  for (const e of refused) {
    const r = refusalOf(e);
    if (r === undefined) continue;
    const lineStart = offsets[e.line - 1] ?? 0;
    const start = lineStart + r.keyword;
    let end = lineStart + e.to;
    const statement = out.slice(start, end).replace(/\s+/g, ' ');
    if (r.kind === 'statement') {
      notes.push(`line ${e.line}: \`${statement}\` left out: the ${r.what} it uses did not load`);
    } else {
      end = blockEnd(out, end);
      const purpose =
        r.what === 'flowtable'
          ? 'a flowtable offloads, it does not filter'
          : 'a helper opens related flows, it does not filter';
      notes.push(
        `line ${e.line}: ${r.what} ${e.span} not loaded: the kernel refused it (No such file or directory); ${purpose}`,
      );
    }
    out = out.slice(0, start) + out.slice(start, end).replace(/[^\n]/g, ' ') + out.slice(end);
  }
  return out;
}

/** Just past the `{ … }` block that opens after `from` (or the line's end without one). */
function blockEnd(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const close = text.indexOf('"', i + 1);
      i = close < 0 ? text.length : close;
    } else if (c === '#') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl - 1;
    } else if (c === '{') depth += 1;
    else if (c === '}') {
      depth -= 1;
      if (depth === 0) return i + 1;
    } else if (c === '\n' && depth === 0) return i;
  }
  return text.length;
}
