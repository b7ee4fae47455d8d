// Preloaded with node -r: writes this process's peak RSS (VmHWM, kB) to $CT_PEAK_RSS_FILE on exit.
const { readFileSync, writeFileSync } = require('node:fs');

process.on('exit', () => {
  const file = process.env.CT_PEAK_RSS_FILE;
  if (!file) return;
  const status = readFileSync('/proc/self/status', 'utf8');
  const kB = /VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 'NaN';
  writeFileSync(file, kB);
});
