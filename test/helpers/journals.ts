// Temp dirs and small journals shared by the journal, analyzer and recorder tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CtEvent } from '../../journal/event.js';
import type {
  FormatVersion,
  JournalGap,
  JournalHeader,
  JournalHeaderInput,
} from '../../journal/format.js';
import { openJournal } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';

/** A fresh directory unique to this test process, removed when the test ends, pass or fail. */
export function tempDir(t: { teardown(fn: () => void): void }, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ct-${tag}-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const HEADER: JournalHeaderInput = {
  tool: { name: 'conntracker', version: '0.1.0' },
  host: 'testhost',
  kernel: '6.18.0-test',
  netns: 'net:[4026531840]',
  start: 1_764_230_000_000_000,
  options: { events: ['new', 'update', 'destroy'], bufferSize: 8388608, force: false },
  sysctls: {
    nf_conntrack_events: 1,
    nf_conntrack_timestamp: 0,
    nf_conntrack_acct: null,
    ip_local_port_range: [32768, 60999],
  },
};

/**
 * Writes a journal of the given batches; with `trailer` false the recording "crashes". In the
 * writer's default format unless `formatVersion` says which.
 */
export function writeJournal(
  path: string,
  batches: CtEvent[][],
  trailer = true,
  formatVersion?: FormatVersion,
): JournalWriter {
  const w = JournalWriter.create(path, HEADER, { formatVersion });
  for (const b of batches) w.append(b);
  if (trailer) w.close({ stop: HEADER.start + 60_000_000 });
  else w.closeAfterFailure();
  return w;
}

/** A whole journal in file order: header, events, gaps, and whether it ended cleanly. */
export function readWhole(path: string): {
  header: JournalHeader;
  events: CtEvent[];
  gaps: JournalGap[];
  complete: boolean;
} {
  const reader = openJournal(path);
  try {
    const events: CtEvent[] = [];
    const gaps: JournalGap[] = [];
    for (const item of reader.items()) {
      if (item.kind === 'events') events.push(...item.events);
      else gaps.push(item.gap);
    }
    const complete = reader.trailer !== undefined && reader.tail === undefined;
    return { header: reader.header, events, gaps, complete };
  } finally {
    reader.close();
  }
}
