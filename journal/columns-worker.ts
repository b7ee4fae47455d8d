// The decoding thread of a parallel replay: reads, checks and scans a journal, posting columns.
import { BYTES_PER_EVENT } from './event-columns.js';
import type { WorkerMessage } from './parallel.js';
import { readerOnFd } from './reader.js';
import { threadSide } from './reading-thread.js';

const side = threadSide<WorkerMessage>(BYTES_PER_EVENT * 1024);
const { post, alloc, takeCredit } = side;

// Batches go over in groups: one message per ~8 frames costs less than one per frame.
const GROUP = 8;
let bufs: ArrayBuffer[] = [];
let ns: number[] = [];
const flush = (offset: number) => {
  if (bufs.length === 0) return;
  takeCredit();
  post({ kind: 'events', bufs, ns, offset }, bufs);
  bufs = [];
  ns = [];
};

try {
  const reader = readerOnFd(side.path, side.fd);
  for (const item of reader.columns({ packed: true, alloc })) {
    if (item.kind === 'events') {
      bufs.push(item.columns.buffer);
      ns.push(item.columns.n);
      if (bufs.length === GROUP) flush(reader.offset);
    } else {
      flush(reader.offset);
      takeCredit();
      post({ kind: 'gap', gap: item.gap, offset: reader.offset });
    }
  }
  flush(reader.offset);
  post({
    kind: 'end',
    trailer: reader.trailer,
    tail: reader.tail,
    counts: reader.counts,
    sha256: reader.sha256,
    addressSets: reader.addressSets,
    routeSets: reader.routeSets,
  });
} catch (err) {
  side.fail(err);
}
