// ct-analyze check: nft's JSON expressions and statements printed back as `nft list ruleset` shows them, for the report.
import { isObj } from './sets.js';

/** Meta keys nft prints without `meta` (meta_key_is_unqualified). */
const UNQUALIFIED = new Set(['iif', 'oif', 'iifname', 'oifname', 'iifgroup', 'oifgroup']);
/** Left-hand sides whose values nft prints in quotes (string types). */
const QUOTED = new Set([
  'iifname',
  'oifname',
  'ibrname',
  'obrname',
  'iif',
  'oif',
  'ibriport',
  'obriport',
]);
const BINOPS = ['&', '|', '^', '<<', '>>'];

/** Whether values compared with `left` are strings nft quotes. */
function quotes(left: unknown): boolean {
  if (!isObj(left)) return false;
  if (isObj(left.meta)) return QUOTED.has(String(left.meta.key));
  if (isObj(left.ct)) return left.ct.key === 'helper';
  if (isObj(left.osf)) return true;
  if (isObj(left.fib)) return left.fib.result === 'oif' || left.fib.result === 'oifname';
  return false;
}

/** One JSON expression as nft prints it; what this renderer does not know, as compact JSON. */
export function renderExpr(e: unknown, quote = false): string {
  if (typeof e === 'string') {
    if (e.startsWith('@')) return e;
    return quote ? JSON.stringify(e) : e;
  }
  if (typeof e === 'number') return String(e);
  if (typeof e === 'boolean') return e ? 'exists' : 'missing';
  if (Array.isArray(e)) return e.map((x) => renderExpr(x, quote)).join(',');
  if (!isObj(e)) return JSON.stringify(e);
  if (isObj(e.payload)) {
    const p = e.payload;
    if (p.protocol !== undefined) return `${p.protocol} ${p.field}`;
    return `@${p.base},${p.offset},${p.len}`;
  }
  if (isObj(e.meta)) {
    const k = String(e.meta.key);
    return UNQUALIFIED.has(k) ? k : `meta ${k}`;
  }
  if (isObj(e.ct)) {
    const c = e.ct;
    const parts = ['ct'];
    if (c.dir !== undefined) parts.push(String(c.dir));
    if (c.family !== undefined) parts.push(String(c.family));
    parts.push(String(c.key));
    return parts.join(' ');
  }
  if (isObj(e.fib)) {
    const flags = Array.isArray(e.fib.flags) ? e.fib.flags.join(' . ') : '';
    return `fib ${flags} ${e.fib.result}`;
  }
  if (isObj(e.prefix)) return `${e.prefix.addr}/${e.prefix.len}`;
  if (Array.isArray(e.range)) return e.range.map((x) => renderExpr(x, quote)).join('-');
  if (Array.isArray(e.concat)) return e.concat.map((x) => renderExpr(x, quote)).join(' . ');
  if (Array.isArray(e.set)) return renderSet(e.set, quote);
  if (isObj(e.elem)) return renderExpr(e.elem.val, quote);
  // A map's `quote` is for its data (`ct helper set … map { 69 : "tftp" }`).
  if (isObj(e.map))
    return `${renderExpr(e.map.key)} map ${renderData(e.map.data, quotes(e.map.key), quote)}`;
  for (const op of BINOPS) {
    const args = e[op];
    if (Array.isArray(args) && args.length === 2) {
      const r = Array.isArray(args[1]) ? `(${args[1].join(' | ')})` : renderExpr(args[1]);
      return `${renderExpr(args[0])} ${op} ${r}`;
    }
  }
  if (isObj(e['tcp option']))
    return `tcp option ${e['tcp option'].name} ${e['tcp option'].field ?? ''}`.trim();
  if (isObj(e.rt)) return `rt ${e.rt.family ? `${e.rt.family} ` : ''}${e.rt.key}`;
  if (isObj(e.osf)) return `osf ${e.osf.key}`;
  if (isObj(e.exthdr)) {
    const x = e.exthdr;
    return x.field === undefined ? `exthdr ${x.name} exists` : `${x.name} ${x.field}`;
  }
  if (isObj(e.socket)) return `socket ${e.socket.key}`;
  if (isObj(e.numgen)) return `numgen ${e.numgen.mode} mod ${e.numgen.mod}`;
  const verdict = renderVerdict(e);
  return verdict ?? JSON.stringify(e);
}

function renderSet(elems: readonly unknown[], quote: boolean, quoteData = false): string {
  const items = elems.map((x) =>
    Array.isArray(x) && x.length === 2
      ? `${renderExpr(x[0], quote)} : ${renderExpr(x[1], quoteData)}`
      : renderExpr(x, quote),
  );
  return `{ ${items.join(', ')} }`;
}

/** A map's data: a named map or an anonymous one. */
function renderData(d: unknown, quoteKeys: boolean, quoteData = false): string {
  return isObj(d) && Array.isArray(d.set) ? renderSet(d.set, quoteKeys, quoteData) : renderExpr(d);
}

/** accept, drop, jump x…; undefined when `e` is no verdict. */
export function renderVerdict(e: unknown): string | undefined {
  if (!isObj(e)) return undefined;
  for (const k of ['accept', 'drop', 'continue', 'return']) if (k in e) return k;
  for (const k of ['jump', 'goto']) {
    const v = e[k];
    if (isObj(v)) return `${k} ${v.target}`;
  }
  return undefined;
}

/** `tcp dport { 22, 80 }`, `iifname "lo"`, `ct state established,related`. */
export function renderMatch(m: Record<string, unknown>): string {
  const left = renderExpr(m.left);
  const right = renderExpr(m.right, quotes(m.left));
  const op = String(m.op ?? '==');
  // After a bitwise left side nft spells `==` out (`tcp flags & (syn | ack) == syn`).
  const binop = isObj(m.left) && BINOPS.some((o) => o in (m.left as object));
  if (op === 'in' || (op === '==' && !binop)) return `${left} ${right}`;
  return `${left} ${op} ${right}`;
}

/** One statement of a rule as nft prints it. */
export function renderStatement(s: unknown): string {
  if (typeof s === 'string') return s.replace(/\s+/g, ' ');
  if (!isObj(s)) return JSON.stringify(s);
  const kind = Object.keys(s)[0] ?? '';
  const body = s[kind];
  const b = isObj(body) ? body : {};
  switch (kind) {
    case 'match':
      return renderMatch(b);
    case 'counter':
      if (typeof body === 'string') return `counter name ${JSON.stringify(body)}`;
      return isObj(b.map) ? `counter name ${renderExpr(body, true)}` : 'counter';
    case 'log': {
      const parts = ['log'];
      if (b.prefix !== undefined) parts.push(`prefix ${JSON.stringify(b.prefix)}`);
      if (b.level !== undefined) parts.push(`level ${b.level}`);
      if (b.group !== undefined) parts.push(`group ${b.group}`);
      return parts.join(' ');
    }
    case 'limit': {
      if (typeof body === 'string') return `limit name ${JSON.stringify(body)}`;
      if (isObj(b.map)) return `limit name ${renderExpr(body, true)}`;
      const unit = b.rate_unit && b.rate_unit !== 'packets' ? ` ${b.rate_unit}` : '';
      const burst = b.burst ? ` burst ${b.burst} ${b.burst_unit ?? 'packets'}` : '';
      return `limit rate ${b.inv ? 'over ' : ''}${b.rate}${unit}/${b.per}${burst}`;
    }
    case 'quota':
      if (typeof body === 'string') return `quota name ${JSON.stringify(body)}`;
      if (isObj(b.map)) return `quota name ${renderExpr(body, true)}`;
      return `quota ${b.inv ? 'over ' : ''}${b.val ?? ''} ${b.val_unit ?? ''}`.trim();
    case 'reject':
      if (b.type === undefined) return 'reject';
      return b.type === 'tcp reset'
        ? 'reject with tcp reset'
        : `reject with ${b.type}${b.expr !== undefined ? ` ${b.expr}` : ''}`;
    case 'mangle':
      return `${renderExpr(b.key)} set ${renderExpr(b.value, quotes(b.key))}`;
    case 'dnat':
    case 'snat':
    case 'masquerade':
    case 'redirect': {
      const fam = b.family !== undefined ? ` ${b.family}` : '';
      const addr = b.addr !== undefined ? renderExpr(b.addr) : '';
      const port = b.port !== undefined ? `:${renderExpr(b.port)}` : '';
      const to = addr !== '' || port !== '' ? ` to ${addr}${port}` : '';
      return `${kind}${fam}${to}`;
    }
    case 'vmap':
      return `${renderExpr(b.key)} vmap ${renderData(b.data, quotes(b.key))}`;
    case 'ct helper':
      return `ct helper set ${typeof body === 'string' ? JSON.stringify(body) : renderExpr(body, true)}`;
    case 'secmark':
      return `meta secmark set ${typeof body === 'string' ? JSON.stringify(body) : renderExpr(body, true)}`;
    case 'set':
      return `${kind} ${b.op} ${renderExpr(b.elem)} ${b.set}`;
    case 'xt':
      return `xt ${b.type} ${b.name}`;
    case 'queue':
      return `queue${b.num !== undefined ? ` num ${renderExpr(b.num)}` : ''}`;
    case 'notrack':
      return 'notrack';
    case 'last':
      return 'last';
    case 'ct count':
      return `ct count ${b.inv ? 'over ' : ''}${b.val}`;
    case 'synproxy': {
      if (isObj(b.map)) return `synproxy name ${renderExpr(body, true)}`;
      const parts = ['synproxy'];
      if (b.mss !== undefined) parts.push(`mss ${b.mss}`);
      if (b.wscale !== undefined) parts.push(`wscale ${b.wscale}`);
      if (Array.isArray(b.flags)) parts.push(b.flags.join(' '));
      return typeof body === 'string' ? `synproxy name ${JSON.stringify(body)}` : parts.join(' ');
    }
    default:
      return renderVerdict(s) ?? (body === null ? kind : JSON.stringify(s));
  }
}

/** A whole rule, its statements in order, and its comment. */
export function renderRule(expr: readonly unknown[], comment?: unknown): string {
  const text = expr.map(renderStatement).join(' ');
  return typeof comment === 'string' ? `${text} comment ${JSON.stringify(comment)}` : text;
}
