// ct-analyze check: nft's error messages read for what a retry can fix (a missing device, a flowtable, ct helper or secmark the kernel refuses).

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
  /** The quoted source line after the span. */
  readonly after: string;
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
      after: source.slice(Number(to)),
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

type Refused = 'flowtable' | 'ct helper' | 'secmark';

/** What a refused construct is, when it is one a verdict does not depend on. */
type Refusal =
  | { kind: 'removal'; what: 'delete' | 'destroy'; keyword: number }
  | { kind: 'declaration'; what: Refused; keyword: number }
  | { kind: 'statement'; what: Refused; keyword: number }
  | { kind: 'elements'; what: Refused; keyword: number };

const ENOENT = /^Could not process rule: No such file or directory$/;
/** A declaration at the start of a line or block: `flowtable ft {`, `add ct helper inet t h {`. */
const DECLARED = /(?:^|[{;])\s*(?:add\s+|create\s+)?(flowtable|ct\s+helper|secmark)\s+(?:\S+\s+)*$/;
/** The object an element maps to: `22 : "ssh_server"`, its key being the span. */
const ELEMENT_VALUE = /^\s*:\s*(?:"([^"\n]*)"|([^\s",;{}]+))/;

/**
 * The kernel's ENOENT for a flowtable (no nf_flow_table here), a ct helper it does not have
 * (OpenWrt's out-of-tree rtsp) or a secmark object (no SELinux policy here knows its context),
 * and for what uses them: `flow add @ft`, `ct helper set "x"`, `meta secmark set "x"`, and map
 * elements naming a refused object (nft points at the first element's key). None of them
 * filters a packet, so leaving them out keeps every verdict (a helper's expectations make some
 * later flows "related", a secmark only labels for SELinux: the note says what was left out).
 * `objects`: the names of the objects refused in the same run, which elements are matched to.
 */
function refusalOf(e: NftError, objects: ReadonlyMap<string, Refused>): Refusal | undefined {
  const removal = removalOf(e);
  if (removal !== undefined) return removal;
  if (!ENOENT.test(e.message)) return undefined;
  if (/^flow\s+(?:add|offload)\s+@/.test(e.span)) {
    return { kind: 'statement', what: 'flowtable', keyword: e.from - 1 };
  }
  const helper = /\bct\s+helper\s+set\s+$/.exec(e.prefix);
  if (helper) return { kind: 'statement', what: 'ct helper', keyword: helper.index };
  const secmark = /\bmeta\s+secmark\s+set\s+$/.exec(e.prefix);
  if (secmark) return { kind: 'statement', what: 'secmark', keyword: secmark.index };
  const value = ELEMENT_VALUE.exec(e.after);
  const object = objects.get(value?.[1] ?? value?.[2] ?? '');
  if (object !== undefined) return { kind: 'elements', what: object, keyword: e.from - 1 };
  const declared = DECLARED.exec(e.prefix);
  if (declared) {
    const what =
      declared[1] === 'flowtable' || declared[1] === 'secmark' ? declared[1] : 'ct helper';
    // From `add`/`create` too: a command left without its object would not parse.
    const lead = declared[0].length - declared[0].replace(/^[{;]?\s*/, '').length;
    return { kind: 'declaration', what, keyword: declared.index + lead };
  }
  return undefined;
}

/**
 * `delete table filter` of a table that does not exist (yet): a file written to replace a
 * table on a host where it exists, refused in the fresh namespace that holds none; and
 * `destroy table …` (nft 1.0.8: delete if it exists), which nft 1.0.6 cannot parse. Both
 * remove what a fresh namespace does not hold, so leaving them out loads the same ruleset.
 */
function removalOf(e: NftError): Refusal | undefined {
  if (/^No such file or directory\b/.test(e.message)) {
    const del = /(?:^|;)\s*(delete\s+table\s+(?:(?:ip6?|inet|arp|bridge|netdev)\s+)?)$/.exec(
      e.prefix,
    );
    if (del)
      return { kind: 'removal', what: 'delete', keyword: e.prefix.length - (del[1] ?? '').length };
  }
  if (/^syntax error, unexpected table\b/.test(e.message) && e.span === 'table') {
    const destroy = /(?:^|;)\s*(destroy\s+)$/.exec(e.prefix);
    if (destroy)
      return {
        kind: 'removal',
        what: 'destroy',
        keyword: e.prefix.length - (destroy[1] ?? '').length,
      };
  }
  return undefined;
}

/** The objects whose declarations the kernel refused in one run, by name. */
function refusedObjects(errors: readonly NftError[]): Map<string, Refused> {
  const objects = new Map<string, Refused>();
  for (const e of errors) {
    const r = refusalOf(e, objects);
    if (r?.kind === 'declaration') objects.set(e.span.replace(/^"(.*)"$/, '$1'), r.what);
  }
  return objects;
}

/** The refusals in `file` itself that a rerun without the construct can get past. */
export function nonFilterRefusals(errors: readonly NftError[], file: string): NftError[] {
  const objects = refusedObjects(errors);
  return errors.filter((e) => e.file === file && refusalOf(e, objects) !== undefined);
}

/** Blanks each refused construct (spaces, newlines kept, so nft's line numbers stay true). */
export function blankRefused(text: string, refused: readonly NftError[], notes: string[]): string {
  const offsets: number[] = [];
  let at = 0;
  for (const l of text.split('\n')) {
    offsets.push(at);
    at += l.length + 1;
  }
  const objects = refusedObjects(refused);
  // Secmark objects come many to a file (one per SELinux type): one note says them all.
  const secmarks: string[] = [];
  const secmarkUses: number[] = [];
  let out = text;
  for (const e of refused) {
    const r = refusalOf(e, objects);
    if (r === undefined) continue;
    const lineStart = offsets[e.line - 1] ?? 0;
    let start = lineStart + r.keyword;
    let end = lineStart + e.to;
    if (r.kind === 'removal') {
      // The whole command, up to the end of its line or a `;`.
      const rest = /^[^;\n]*/.exec(out.slice(start))?.[0] ?? '';
      end = start + rest.length;
      notes.push(
        `line ${e.line}: \`${rest.trim()}\` left out: ${r.what === 'delete' ? 'the table does not exist in the fresh namespace the ruleset is loaded into' : 'destroy (nft 1.0.8) is not read by this nft, and the fresh namespace the ruleset is loaded into holds no table to destroy'}`,
      );
      out = out.slice(0, start) + ' '.repeat(end - start) + out.slice(end);
      continue;
    }
    if (r.kind === 'elements') {
      const block = elementsBlock(out, lineStart + e.from - 1);
      if (block === undefined) continue;
      [start, end] = block;
    } else if (r.kind === 'declaration') end = blockEnd(out, end);
    const what = out.slice(start, end).replace(/\s+/g, ' ');
    if (r.what === 'secmark') {
      if (r.kind === 'declaration') secmarks.push(`${e.span} (line ${e.line})`);
      else secmarkUses.push(e.line);
    } else if (r.kind === 'declaration') {
      const purpose =
        r.what === 'flowtable'
          ? 'a flowtable offloads, it does not filter'
          : 'a helper opens related flows, it does not filter';
      notes.push(
        `line ${e.line}: ${r.what} ${e.span} not loaded: the kernel refused it (No such file or directory); ${purpose}`,
      );
    } else {
      notes.push(`line ${e.line}: \`${what}\` left out: the ${r.what} it uses did not load`);
    }
    out = out.slice(0, start) + out.slice(start, end).replace(/[^\n]/g, ' ') + out.slice(end);
  }
  if (secmarks.length > 0 || secmarkUses.length > 0) notes.push(secmarkNote(secmarks, secmarkUses));
  return out;
}

function secmarkNote(objects: readonly string[], uses: readonly number[]): string {
  const lines = `line${uses.length === 1 ? '' : 's'} ${[...new Set(uses)].join(', ')}`;
  const what = [
    ...(objects.length > 0 ? [`secmark ${objects.join(', ')}`] : []),
    ...(uses.length > 0 ? [`what sets secmark labels from them (${lines})`] : []),
  ].join(' and ');
  return `${what} left out: the kernel refused the objects (No such file or directory): no SELinux policy loaded here knows their contexts; a secmark labels packets for SELinux, it does not filter`;
}

/**
 * The elements nft pointed into, as [start, end) to blank: `elements = { … }` of a map (which
 * stays, empty), an `add element … { … }` command, or the statement an anonymous map is in
 * (`meta secmark set tcp dport map { … }`). nft points at the block's first key, so only
 * blanks and comments lie between it and the `{` looked for.
 */
function elementsBlock(text: string, key: number): [number, number] | undefined {
  const open = text.lastIndexOf('{', key);
  if (
    open < 0 ||
    text
      .slice(open + 1, key)
      .replace(/#.*$/gm, '')
      .trim() !== ''
  )
    return undefined;
  const lineStart = text.lastIndexOf('\n', open) + 1;
  const before = text.slice(lineStart, open);
  const from =
    /\belements\s*=\s*$/.exec(before) ??
    /^\s*(?:add\s+|create\s+)?element\b.*$/.exec(before) ??
    /\b(?:meta\s+secmark|ct\s+helper)\s+set\b[^;{}]*$/.exec(before);
  if (!from) return undefined;
  const start = lineStart + from.index + (from[0].length - from[0].trimStart().length);
  return [start, blockEnd(text, open)];
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
