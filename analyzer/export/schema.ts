// The export's columns, named once: what schema.json publishes and what the NDJSON and Parquet writers write.

/** schema.json's `version`: a change of a column's name, type or meaning makes it 2. */
export const EXPORT_VERSION = 1;

/** The value types of the columns, as docs/export.md and schema.json name them. */
export type ColumnType =
  | 'string'
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'int64'
  | 'timestamp_us'
  | 'binary16';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** Null where the event (or flow) does not carry the value. */
  readonly nullable: boolean;
}

const col = (name: string, type: ColumnType, nullable = false): Column => ({
  name,
  type,
  nullable,
});

/** One row per journal event, in journal order (docs/export.md, "Schema"). */
export const EVENT_COLUMNS: readonly Column[] = [
  col('host', 'string'),
  col('journal', 'string'),
  col('seq', 'int64'),
  col('time', 'timestamp_us'),
  col('time_us', 'int64'),
  col('time_kernel', 'bool'),
  col('type', 'uint8'),
  col('family', 'uint8'),
  col('proto', 'uint8'),
  col('status', 'uint32'),
  col('id', 'uint32'),
  col('src', 'string'),
  col('dst', 'string'),
  col('src_bin', 'binary16'),
  col('dst_bin', 'binary16'),
  col('sport', 'uint16'),
  col('dport', 'uint16'),
  col('icmp_type', 'uint8'),
  col('icmp_code', 'uint8'),
  col('icmp_id', 'uint16'),
  col('reply_src', 'string'),
  col('reply_dst', 'string'),
  col('reply_src_bin', 'binary16'),
  col('reply_dst_bin', 'binary16'),
  col('reply_sport', 'uint16'),
  col('reply_dport', 'uint16'),
  col('tcp_state', 'uint8', true),
  col('start_us', 'int64', true),
  col('mark', 'uint32', true),
  col('zone', 'uint16', true),
  col('orig_packets', 'uint64', true),
  col('orig_bytes', 'uint64', true),
  col('reply_packets', 'uint64', true),
  col('reply_bytes', 'uint64', true),
  col('port_lo', 'uint16', true),
  col('port_hi', 'uint16', true),
];

/**
 * One row per (host, flow): the flow table of that host's journals, as ct-analyze builds it
 * for them alone. The fleet's table is these rows grouped by everything but host (docs/export.md).
 */
export const FLOW_COLUMNS: readonly Column[] = [
  col('host', 'string'),
  col('table', 'string'),
  col('family', 'uint8'),
  col('proto', 'uint8'),
  col('src', 'string'),
  col('dst', 'string'),
  col('src_bin', 'binary16'),
  col('dst_bin', 'binary16'),
  col('sport', 'uint16'),
  col('dport', 'uint16'),
  col('icmp_type', 'uint8'),
  col('icmp_code', 'uint8'),
  col('confirmed', 'bool'),
  col('assured', 'bool'),
  col('first_seen', 'timestamp_us'),
  col('last_seen', 'timestamp_us'),
  col('first_us', 'int64'),
  col('last_us', 'int64'),
  col('collapse', 'string'),
];

/** schema.json: the version and both tables' columns, whatever --what wrote. */
export function schemaJson(): string {
  const table = (cols: readonly Column[]) =>
    cols.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable }));
  const doc = {
    'conntracker.export': EXPORT_VERSION,
    version: EXPORT_VERSION,
    events: table(EVENT_COLUMNS),
    flows: table(FLOW_COLUMNS),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
