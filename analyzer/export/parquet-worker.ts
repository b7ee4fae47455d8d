// The Parquet encoding thread: encodes and compresses the row groups the export's thread sends, and sends their pages back.
import { type EncodeRequest, encodeRowGroup } from './parquet-pages.js';
import { serveWork } from './work-thread.js';

serveWork((m: EncodeRequest) => {
  const chunks = encodeRowGroup(m.inputs, m.rows);
  const transfer: ArrayBuffer[] = [];
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
  // The inputs' memory goes back for the next row group (no page is a view of it).
  return { r: chunks, transfer };
});
