// The Parquet encoding thread: encodes and compresses the row groups the export's thread sends, and sends their pages back.
import { parentPort } from 'node:worker_threads';
import { type EncodeReply, type EncodeRequest, encodeRowGroup } from './parquet-pages.js';

const port = parentPort;
if (port === null) throw new Error('parquet-worker runs as a worker thread only');

port.on('message', (m: EncodeRequest) => {
  let reply: EncodeReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const chunks = encodeRowGroup(m.inputs, m.rows);
    const seen = new Set<ArrayBufferLike>();
    for (const c of chunks) {
      for (const page of c.pages) {
        const buf = page.body.buffer;
        // Small bodies are copied: their memory may be the pool other Buffers here share.
        if (!seen.has(buf) && buf instanceof ArrayBuffer && buf.byteLength > Buffer.poolSize) {
          seen.add(buf);
          transfer.push(buf);
        }
      }
    }
    reply = { id: m.id, chunks };
  } catch (err) {
    reply = { id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    transfer.length = 0;
  }
  // The inputs' memory goes back for the next row group (no page is a view of it).
  if (m.give !== undefined) {
    reply.given = m.give;
    transfer.push(m.give);
  }
  port.postMessage(reply, transfer);
});
