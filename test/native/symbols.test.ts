// The addon is built with hidden visibility: its dynamic symbol table offers N-API's entry points
// and nothing of ct:: (RunPrivileged, the keeper) for another library in the process to call.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { addonPath } from '../../native/index.js';

/** What Node looks up in an N-API module (node_api.h: NAPI_MODULE_INIT and the version query). */
const NAPI_ENTRY_POINTS = new Set([
  'napi_register_module_v1',
  'node_api_module_get_api_version_v1',
]);

const nm = spawnSync('nm', ['-D', '--defined-only', addonPath()], { encoding: 'utf8' });

t.test(
  'symbols: the addon exports only the N-API module init, no ct:: function',
  { skip: nm.error ? 'nm is missing: apt-get install binutils' : false },
  async (t) => {
    t.equal(nm.status, 0, `nm -D reads ${addonPath()}: ${nm.stderr}`);
    // Lines are "address type name"; types in capitals are global, w/v/u weak or unique ones.
    const defined = nm.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols.length === 3)
      .map(([, type, name]) => ({ type, name: name ?? '' }));
    t.ok(defined.length > 0, 'nm lists at least the module init');
    const extra = defined.filter(({ name }) => !NAPI_ENTRY_POINTS.has(name));
    t.strictSame(extra, [], 'no other defined dynamic symbol');
    t.ok(
      defined.some(({ name }) => name === 'napi_register_module_v1'),
      'napi_register_module_v1 is exported',
    );
  },
);
