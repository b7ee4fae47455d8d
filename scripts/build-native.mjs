// The package's install script: builds the conntrack addon on Linux, never fails the install.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function warn(why) {
  process.stderr.write(
    `conntracker: WARNING: the native conntrack addon was not built (${why}), so ct-record is unavailable. ` +
      'Install g++ make python3 linux-libc-dev, then run `npm rebuild conntracker`. ' +
      'ct-analyze works without the addon.\n',
  );
}

/** Runs a command in the package root; returns null on success, else why it failed. */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) return r.error.code === 'ENOENT' ? 'not-found' : r.error.message;
  if (r.signal) return `${cmd} was killed by ${r.signal}`;
  return r.status === 0
    ? null
    : `${cmd} ${args.join(' ')} failed with status ${r.status}, see its output above`;
}

function main() {
  if (process.platform !== 'linux') {
    warn(`conntrack netlink exists only on Linux, this is ${process.platform}`);
    return;
  }
  // npm puts its bundled node-gyp on PATH while it runs lifecycle scripts.
  let failure = run('node-gyp', ['rebuild']);
  if (failure === 'not-found') failure = run('npx', ['--no', 'node-gyp', 'rebuild']);
  if (failure === 'not-found') failure = 'neither node-gyp nor npx was found';
  if (failure !== null) warn(failure);
}

main();
