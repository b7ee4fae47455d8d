-- The export's events as a ClickHouse table (export schema 1), filled from the NDJSON files:
--   curl --data-binary @part-0.ndjson 'http://HOST:8123/?query=INSERT%20INTO%20events%20FORMAT%20JSONEachRow&date_time_input_format=best_effort'
-- ClickHouse 18.16 has no DateTime64 (time keeps whole seconds; time_us is exact) and no IPv6
-- type: the *_bin columns hold the 16 bytes as 32 lowercase hex digits, whose text order is
-- the addresses' numeric order.
CREATE TABLE events
(
    host String,
    journal String,
    seq Int64,
    time DateTime('UTC'),
    time_us Int64,
    time_kernel UInt8,
    type UInt8,
    family UInt8,
    proto UInt8,
    status UInt32,
    id UInt32,
    src String,
    dst String,
    src_bin String,
    dst_bin String,
    sport UInt16,
    dport UInt16,
    icmp_type UInt8,
    icmp_code UInt8,
    icmp_id UInt16,
    reply_src String,
    reply_dst String,
    reply_src_bin String,
    reply_dst_bin String,
    reply_sport UInt16,
    reply_dport UInt16,
    tcp_state Nullable(UInt8),
    start_us Nullable(Int64),
    mark Nullable(UInt32),
    zone Nullable(UInt16),
    orig_packets Nullable(UInt64),
    orig_bytes Nullable(UInt64),
    reply_packets Nullable(UInt64),
    reply_bytes Nullable(UInt64),
    port_lo Nullable(UInt16),
    port_hi Nullable(UInt16)
)
ENGINE = MergeTree()
ORDER BY (host, journal, seq)
