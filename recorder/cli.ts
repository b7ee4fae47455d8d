#!/usr/bin/env node
// ct-record: parse the options (recorder/options.ts), then run them (recorder/main.ts).
import { runCli } from '../common/cli.js';
import { stderrLogger } from './log.js';
import { runRecorder } from './main.js';
import { recorderProgram, settleOptions } from './options.js';

await runCli('ct-record', async () => {
  const program = recorderProgram();
  program.parse();
  return runRecorder(settleOptions(program, stderrLogger().warn));
});
