// ct-analyze check: nft's text as tokens, and the cursor the nft parser walks them with.
import { CtError } from '../../common/errors.js';
import { unsupported } from './ruleset.js';

export interface Token {
  /** A word, a string's contents, or one of `{ } , ;` and '\n' (the end of a line). */
  readonly text: string;
  readonly kind: 'word' | 'string' | 'punct' | 'end';
  readonly line: number;
}

export function tokenize(source: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === '\n') {
      out.push({ text: '\n', kind: 'end', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
    } else if (c === '\\' && source[i + 1] === '\n') {
      // A continued line is one statement.
      line++;
      i += 2;
    } else if (c === ';') {
      out.push({ text: ';', kind: 'end', line });
      i++;
    } else if (c === '{' || c === '}' || c === ',') {
      out.push({ text: c, kind: 'punct', line });
      i++;
    } else if (c === '"') {
      const end = source.indexOf('"', i + 1);
      const nl = source.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end)) throw unsupported('an unterminated string', line);
      out.push({ text: source.slice(i + 1, end), kind: 'string', line });
      i = end + 1;
    } else {
      let j = i;
      while (j < source.length && !' \t\r\n;{},"#'.includes(source[j] as string)) j++;
      out.push({ text: source.slice(i, j), kind: 'word', line });
      i = j;
    }
  }
  out.push({ text: '\n', kind: 'end', line });
  return out;
}

/** A position in the tokens of one file, and the steps every nft statement is read with. */
export class TokenCursor {
  protected i = 0;

  constructor(protected readonly tokens: Token[]) {}

  protected eof(): boolean {
    return this.i >= this.tokens.length;
  }

  protected peek(): Token {
    return this.tokens[this.i] ?? { text: '\n', kind: 'end', line: this.lastLine() };
  }

  protected lastLine(): number {
    return this.tokens[this.tokens.length - 1]?.line ?? 1;
  }

  protected next(): Token {
    const t = this.peek();
    this.i++;
    return t;
  }

  protected skipEnds(): boolean {
    let skipped = false;
    while (!this.eof() && this.peek().kind === 'end') {
      this.i++;
      skipped = true;
    }
    return skipped;
  }

  protected word(what: string): Token {
    const t = this.next();
    if (t.kind !== 'word' && t.kind !== 'string') {
      throw new CtError(
        'ERULESET',
        `line ${t.line}: expected ${what}, found '${t.text === '\n' ? 'end of line' : t.text}': fix the ruleset (nft -c -f FILE checks it)`,
      );
    }
    return t;
  }

  protected expect(text: string): Token {
    const t = this.next();
    if (t.text !== text) {
      throw new CtError(
        'ERULESET',
        `line ${t.line}: expected '${text}', found '${t.text === '\n' ? 'end of line' : t.text}': fix the ruleset (nft -c -f FILE checks it)`,
      );
    }
    return t;
  }

  protected endStatement(): void {
    const t = this.peek();
    if (t.kind === 'end') this.i++;
    else if (t.text !== '}') throw unsupported(`'${t.text}'`, t.line);
  }

  /** Skips to the end of the enclosing `{ … }` block. */
  protected skipBlock(): void {
    let depth = 1;
    while (!this.eof() && depth > 0) {
      const t = this.next();
      if (t.text === '{') depth++;
      else if (t.text === '}') depth--;
    }
    this.endStatement();
  }

  protected skipStatement(): void {
    let depth = 0;
    while (!this.eof()) {
      const t = this.peek();
      if (depth === 0 && (t.kind === 'end' || t.text === '}')) break;
      this.next();
      if (t.text === '{') depth++;
      else if (t.text === '}') depth--;
    }
    this.endStatement();
  }

  /** One value or an anonymous set `{ a, b-c }` of them (a set may span lines). */
  protected values(): Token[] {
    const t = this.next();
    if (t.text !== '{') {
      if (t.kind !== 'word' && t.kind !== 'string') {
        throw unsupported(
          `'${t.text === '\n' ? 'end of line' : t.text}' where a value belongs`,
          t.line,
        );
      }
      if (t.text.startsWith('@') || t.text.startsWith('$')) {
        throw unsupported(`named set or variable '${t.text}'`, t.line);
      }
      // ct state established,related: a list without braces.
      const out = [t];
      while (this.peek().text === ',') {
        this.next();
        out.push(this.word('a value'));
      }
      return out;
    }
    const out: Token[] = [];
    for (;;) {
      const v = this.next();
      if (v.text === '}') return out;
      if (v.text === ',' || v.kind === 'end') {
        if (this.eof()) throw new CtError('ERULESET', `line ${t.line}: a set has no closing '}'`);
        continue;
      }
      if (v.text === '{') throw unsupported('a nested set', v.line);
      out.push(v);
    }
  }

  protected negation(): boolean {
    const t = this.peek();
    if (t.text === '!=') {
      this.next();
      return true;
    }
    if (t.text === '==') this.next();
    return false;
  }
}
