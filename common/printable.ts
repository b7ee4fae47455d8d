// Text from journals made harmless for a terminal: the one definition of what may not be printed raw.

/**
 * What a string from a stranger's file may not put on a terminal or into a report raw: C0 and
 * C1 controls and DEL (ESC starts the sequences that retitle a window, clear a screen or move
 * the cursor; C1 CSI does the same in one byte on some terminals), line and paragraph
 * separators, lone surrogates, and every format or default-ignorable character: the bidi
 * embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks U+200E, U+200F
 * and U+061C, zero-width spaces and joiners, tags. Those draw nothing, or reorder what is drawn
 * ("Trojan Source"): a name could show as another, or as a line the tool never wrote.
 */
const UNSAFE = '\\p{Cc}\\p{Cf}\\p{Cs}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}';
const UNSAFE_CHAR = new RegExp(`[${UNSAFE}]`, 'gu');

/** The code point of the first character `printable` would escape (newline and tab too), if any. */
export function unsafeChar(s: string): number | undefined {
  return new RegExp(`[${UNSAFE}]`, 'u').exec(s)?.[0].codePointAt(0);
}

/**
 * A string from a journal made safe for one line of a report: every unsafe character (line
 * breaks and tabs included) becomes `\xNN`, `\uNNNN` or `\u{NNNNN}`, so one string is one line
 * and shows what it holds. Backslashes stay: a name that spells `\x1b` fakes a name, not a
 * terminal sequence.
 */
export function printable(s: string): string {
  return s.replace(UNSAFE_CHAR, (ch) => {
    const code = ch.codePointAt(0) as number;
    if (code <= 0xff) return `\\x${hex(code, 2)}`;
    return code <= 0xffff ? `\\u${hex(code, 4)}` : `\\u{${code.toString(16)}}`;
  });
}

function hex(code: number, digits: number): string {
  return code.toString(16).padStart(digits, '0');
}

/** Unsafe characters other than a newline, a tab, and a CR that ends a line (CSV's CRLF). */
const UNSAFE_IN_OUTPUT = new RegExp(`\\r(?!\\n)|(?![\\n\\t\\r])[${UNSAFE}]`, 'gu');

/**
 * A whole report (lines, newlines kept) safe for a terminal: any unsafe character left in it
 * becomes `\uNNNN` per UTF-16 unit. That form is also a valid JSON string escape that parses
 * back to the same character, so one filter serves the text, CSV, Markdown, JSON and ruleset
 * outputs alike. Newlines, tabs and CRLF line ends pass: they move no cursor a report did not.
 */
export function safeText(s: string): string {
  return s.replace(UNSAFE_IN_OUTPUT, (ch) => {
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${hex(ch.charCodeAt(i), 4)}`;
    return out;
  });
}

/**
 * The filter every report passes on its way to stdout or a file (HTML aside: it escapes for a
 * browser itself). Why here and not only where a field is formatted: each report escapes the
 * journal's strings as it builds its lines (printable, mdText, csvField, JSON.stringify), but
 * a report is many writers, and the next line someone adds can forget; this last step cannot
 * be forgotten by a line, only by a whole new output, and it guarantees that whatever a
 * journal holds, no escape sequence, C1 control or bidi override reaches a terminal. A field
 * that forgot printable may still break its line in two (a newline passes here, as it must),
 * which is why both layers exist. Chunks are filtered as they stream: a CR ending one chunk is
 * held until the next shows whether a newline follows it.
 */
export function* safeChunks(chunks: Iterable<string>): Generator<string> {
  let held = '';
  for (const chunk of chunks) {
    const text = held + chunk;
    held = text.endsWith('\r') ? '\r' : '';
    const out = safeText(held === '' ? text : text.slice(0, -1));
    if (out !== '') yield out;
  }
  if (held !== '') yield safeText(held);
}
