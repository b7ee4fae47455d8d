// --table as root: a file another user owns is refused, the --user's is not (chown needs root).
import '../../helpers/kernel.js';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TableFile } from '../../../recorder/table-file.js';
import { tempDir } from '../../helpers/journals.js';

function writeOnce(path: string, text: string, opts?: { uid?: number }): void {
  const f = new TableFile(path, opts);
  try {
    f.write([text]);
  } finally {
    f.close();
  }
}

t.test('table: a file another user owns is refused; root and the --user may own it', async (t) => {
  const dir = tempDir(t, 'table-owner');
  const path = join(dir, 'flows.txt');
  writeFileSync(path, 'theirs\n');
  chownSync(path, 4321, 4321);
  t.throws(() => writeOnce(path, 'flows\n'), {
    code: 'ETABLE',
    message: /flows\.txt belongs to uid 4321, not to root .*: remove it/,
  });
  t.equal(readFileSync(path, 'utf8'), 'theirs\n', 'not truncated');
  t.doesNotThrow(() => writeOnce(path, 'ours\n', { uid: 4321 }), 'the --user of this run owns it');
  t.equal(readFileSync(path, 'utf8'), 'ours\n');
});
