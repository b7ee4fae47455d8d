-- The flow table of `ct-analyze --collapse MODE` (its lines without `#`) from exported events.
-- DuckDB. Set first: events, a glob of the export's event files, and collapse, the mode:
--   SET VARIABLE events = 'DIR/events/**/*.parquet';
--   SET VARIABLE collapse = '1024';  -- or 'none', 'ephemeral', or 'LO-HI' such as '32768-60999'
WITH
  -- Source ports in [lo, hi] become `to`, others stay. 'ephemeral' (lo NULL here) takes each
  -- journal's ip_local_port_range, Linux's default 32768-60999 where a journal has none.
  rule AS (
    SELECT
      m,
      CASE m WHEN '1024' THEN 1025 WHEN 'none' THEN 1 WHEN 'ephemeral' THEN NULL
        ELSE CAST(split_part(m, '-', 1) AS INTEGER) END AS lo,
      CASE m WHEN '1024' THEN 65535 WHEN 'none' THEN 0 WHEN 'ephemeral' THEN NULL
        ELSE CAST(split_part(m, '-', 2) AS INTEGER) END AS hi
    FROM (SELECT getvariable('collapse') AS m)
  ),
  -- Only TCP, UDP, ICMP (in IPv4) and ICMPv6 (in IPv6) enter the tables, numbered in output
  -- order: 0 TCPv4, 1 UDPv4, 2 ICMPv4, 3 TCPv6, 4 UDPv6, 5 ICMPv6.
  keyed AS (
    SELECT
      (CASE family WHEN 4 THEN 0 ELSE 3 END)
        + (CASE proto WHEN 6 THEN 0 WHEN 17 THEN 1 ELSE 2 END) AS t,
      e.*,
      -- Integers whatever types the reader inferred (read_ndjson types a column that is null
      -- in every row it samples as JSON, which compares as text).
      CAST(sport AS INTEGER) AS sp,
      CASE WHEN rule.lo IS NOT NULL THEN rule.lo
        WHEN CAST(port_lo AS INTEGER) <= CAST(port_hi AS INTEGER) THEN CAST(port_lo AS INTEGER)
        ELSE 32768 END AS lo,
      CASE WHEN rule.hi IS NOT NULL THEN rule.hi
        WHEN CAST(port_lo AS INTEGER) <= CAST(port_hi AS INTEGER) THEN CAST(port_hi AS INTEGER)
        ELSE 60999 END AS hi,
      rule.m = '1024' AS to1024
    FROM read_parquet(getvariable('events'), hive_partitioning = true) AS e, rule
    WHERE (family = 4 AND proto IN (6, 17, 1)) OR (family = 6 AND proto IN (6, 17, 58))
  ),
  -- The flow key: table, addresses as 16 bytes (numeric order), destination port and collapsed
  -- source port, or ICMP type and code (as integers: see above). Confirmed when any event of
  -- the key had IPS_SEEN_REPLY (status & 2).
  flows AS (
    SELECT
      t, src_bin, dst_bin,
      CAST(CASE WHEN t IN (2, 5) THEN icmp_type ELSE dport END AS INTEGER) AS a,
      CAST(CASE WHEN t IN (2, 5) THEN icmp_code
        WHEN sp BETWEEN lo AND hi THEN (CASE WHEN to1024 THEN 1024 ELSE lo END)
        ELSE sp END AS INTEGER) AS b,
      any_value(src) AS src,
      any_value(dst) AS dst,
      bool_or(status & 2 <> 0) AS confirmed
    FROM keyed
    GROUP BY ALL
  )
-- One line per flow, as ct-analyze prints it; each table counts from 0.
SELECT
  lpad(['TCPv4', 'UDPv4', 'ICMPv4', 'TCPv6', 'UDPv6', 'ICMPv6'][t + 1], 6, ' ')
    || ' ['
    || lpad(CAST(row_number() OVER (PARTITION BY t ORDER BY src_bin, dst_bin, a, b) - 1 AS VARCHAR), 12, ' ')
    || '] src = ' || src
    || CASE WHEN t IN (2, 5)
         THEN ' to dst = ' || dst || ' (type=' || a || ' | code=' || b || ')'
         ELSE ' (port=' || b || ') to dst = ' || dst || ' (port=' || a || ')' END
    || CASE WHEN confirmed THEN ' (confirmed)' ELSE '' END AS line
FROM flows
ORDER BY t, src_bin, dst_bin, a, b;
