-- The flow table of `ct-analyze --collapse MODE` (its lines without `#`) from the events table
-- (events.clickhouse.sql). ClickHouse. {collapse:String} is the mode: '1024', 'none',
-- 'ephemeral', or 'LO-HI' such as '32768-60999' (ClickHouse 19.5 and later: the URL parameter
-- param_collapse=1024; older ones: replace it with the quoted mode). Written for 18.16, which
-- has no window functions: each table's flows are sorted and counted as one array.
SELECT line
FROM
(
    -- One line per flow, as ct-analyze prints it; each table counts from 0.
    SELECT
        t,
        arrayJoin(arrayMap((f, i) -> (i, concat(
            [' TCPv4', ' UDPv4', 'ICMPv4', ' TCPv6', ' UDPv6', 'ICMPv6'][t + 1],
            ' [', substring(concat('            ', toString(i - 1)), length(toString(i - 1)) + 1, 12),
            '] src = ', f.5,
            if(t IN (2, 5),
                concat(' to dst = ', f.6, ' (type=', toString(f.3), ' | code=', toString(f.4), ')'),
                concat(' (port=', toString(f.4), ') to dst = ', f.6, ' (port=', toString(f.3), ')')),
            if(f.7 = 1, ' (confirmed)', ''))), flows, arrayEnumerate(flows))) AS numbered,
        numbered.1 AS n,
        numbered.2 AS line
    FROM
    (
        -- A table's flows in order: addresses as 16 bytes (numeric order), then a, b.
        SELECT t, arraySort(groupArray((src_bin, dst_bin, a, b, src_text, dst_text, confirmed))) AS flows
        FROM
        (
            -- The flow key: table, addresses, destination port and collapsed source port, or
            -- ICMP type and code. Confirmed when any event of the key had IPS_SEEN_REPLY.
            SELECT t, src_bin, dst_bin, a, b,
                any(src) AS src_text, any(dst) AS dst_text, max(bitAnd(status, 2) != 0) AS confirmed
            FROM
            (
                -- Source ports in [lo, hi] become `to`, others stay. 'ephemeral' takes each
                -- journal's ip_local_port_range, Linux's default 32768-60999 where it has none.
                SELECT
                    t, src_bin, dst_bin, src, dst, status,
                    if(t IN (2, 5), toUInt32(icmp_type), toUInt32(dport)) AS a,
                    multiIf(t IN (2, 5), toUInt32(icmp_code),
                        sport >= lo AND sport <= hi, if(m = '1024', 1024, lo),
                        toUInt32(sport)) AS b
                FROM
                (
                    SELECT
                        -- The six tables in output order: 0 TCPv4 … 5 ICMPv6.
                        if(family = 4, 0, 3) + multiIf(proto = 6, 0, proto = 17, 1, 2) AS t,
                        src_bin, dst_bin, src, dst, status, sport, dport, icmp_type, icmp_code,
                        {collapse:String} AS m,
                        ifNull(port_lo <= port_hi, 0) = 1 AS ranged,
                        multiIf(m = '1024', 1025, m = 'none', 1,
                            m = 'ephemeral', if(ranged, toUInt32(ifNull(port_lo, 0)), 32768),
                            toUInt32OrZero(splitByChar('-', m)[1])) AS lo,
                        multiIf(m = '1024', 65535, m = 'none', 0,
                            m = 'ephemeral', if(ranged, toUInt32(ifNull(port_hi, 0)), 60999),
                            toUInt32OrZero(splitByChar('-', m)[2])) AS hi
                    FROM events
                    -- Only TCP, UDP, ICMP (in IPv4) and ICMPv6 (in IPv6) enter the tables.
                    WHERE (family = 4 AND proto IN (6, 17, 1)) OR (family = 6 AND proto IN (6, 17, 58))
                )
            )
            GROUP BY t, src_bin, dst_bin, a, b
        )
        GROUP BY t
    )
)
ORDER BY t, n
