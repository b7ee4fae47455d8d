// ct-analyze check: a ruleset file's text, nft or iptables-save, as the one model (check/ruleset.ts).
import { parseIptables } from './parse-iptables.js';
import { parseNft } from './parse-nft.js';
import type { Ruleset } from './ruleset.js';

export { parseIptables, parseNft };

/** nft unless the file looks like iptables-save output (`*filter`, `:INPUT …`, `-A …`). */
export function parseRuleset(source: string): Ruleset {
  const first = source.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  return first !== undefined && /^(\*|:|-A\s)/.test(first.trim())
    ? parseIptables(source)
    : parseNft(source);
}
