// Test helper: a Fate as one short line, so tests compare what the walk decided by eye.
import { chainName, type Fate } from '../../../analyzer/check/model.js';

/** `blocked input: ip f in #2 drop`, `breaks reply output: inet f out policy drop`, `undetermined first prerouting: … (match)`. */
export function fateText(f: Fate): string {
  switch (f.kind) {
    case 'accepted':
      return 'accepted';
    case 'blocked':
    case 'breaks': {
      const where = `${chainName(f.by.chain)} ${f.by.rule ? `#${f.by.rule.index}` : 'policy'} ${f.by.verdict}`;
      return f.kind === 'blocked'
        ? `blocked ${f.hook}: ${where}`
        : `breaks ${f.packet} ${f.hook}: ${where}`;
    }
    case 'undetermined':
      return `undetermined ${f.packet} ${f.hook}: ${chainName(f.chain)} #${f.rule.index} (${f.match})`;
  }
}
