// `node --import ./test/helpers/loaded-modules.mjs CLI …`: appends every module URL the program resolves to $LOADED_MODULES_LOG.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

// The same file is the hooks module: registered from the main thread, it runs again on the
// loader's thread, where only the resolve hook below is wanted.
if (isMainThread) register(import.meta.url);

/** A resolve hook: what the program asked for, appended as one URL a line (synchronously, so no line is lost at exit). */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  const log = process.env.LOADED_MODULES_LOG;
  if (log) appendFileSync(log, `${resolved.url}\n`);
  return resolved;
}
