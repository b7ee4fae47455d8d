#!/usr/bin/env python3
# Captures the fuzz seed corpus: real ctnetlink datagrams from real traffic in throwaway namespaces.
#
# Run as root: python3 native/fuzz/capture-corpus.py [OUTDIR] (default native/fuzz/corpus).
# It builds client <-> router <-> server namespaces joined by veth pairs (the router masquerades
# IPv4, DNATs one port, routes IPv6 plainly, sets a ct mark and a ct zone on some flows, with
# nf_conntrack_acct and nf_conntrack_timestamp on), then re-runs itself in the router namespace
# as the listener: one socket bound to the NEW, UPDATE and DESTROY groups, one for table dumps.
# The main process makes TCP, UDP and ICMP/ICMPv6 traffic over both families, asks for a dump
# while flows are open, provokes an NLMSG_ERROR, lets the flows expire and flushes the rest
# (DESTROY events carry the stop timestamp and counters). Each file written is one datagram
# exactly as recv() returned it; a few of each kind are kept. The namespaces are deleted at exit.
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 0, 1, 2
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_CREATE, NLM_F_EXCL = 0x300, 0x400, 0x200
NLMSG_ERROR, NLMSG_DONE = 2, 3
GROUPS = 0b111  # NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY (groups 1, 2, 3)
CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM = 1, 2, 1
CTA_STATUS, CTA_MARK, CTA_ZONE = 3, 8, 18
IPS_SRC_NAT, IPS_DST_NAT = 1 << 4, 1 << 5
KEEP_PER_KIND = 2

TAG = f'{os.getpid()}'
CLIENT, ROUTER, SERVER = f'ctfz-c-{TAG}', f'ctfz-r-{TAG}', f'ctfz-s-{TAG}'

ROUTER_RULES = '''
table inet ctfz {
  chain raw_pre {
    type filter hook prerouting priority raw;
    iifname "r0" udp dport 5353 ct zone set 7
    iifname "r1" udp sport 5353 ct zone set 7
  }
  chain through {
    type filter hook forward priority filter;
    ct state new,established,related tcp dport 80 ct mark set 0x2a
    ct state new,established,related accept
  }
}
table ip ctfz_nat {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "r0" tcp dport 8080 dnat to 10.77.2.2:80
  }
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "r1" masquerade
  }
}
'''

# Servers in the server namespace: TCP echo on 80 (both families), UDP echo on 53 and 5353.
SERVER_PY = r'''
import socket, threading
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 80)); s.listen(16)
    while True:
        c, _ = s.accept()
        def echo(c=c):
            while (d := c.recv(4096)): c.sendall(d)
            c.close()
        threading.Thread(target=echo, daemon=True).start()
def udp(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port))
    while True:
        d, a = s.recvfrom(4096); s.sendto(d, a)
for args in [(tcp, socket.AF_INET, '10.77.2.2'), (tcp, socket.AF_INET6, 'fd77:2::2'),
             (udp, socket.AF_INET, '10.77.2.2', 53), (udp, socket.AF_INET6, 'fd77:2::2', 53),
             (udp, socket.AF_INET, '10.77.2.2', 5353), (udp, socket.AF_INET6, 'fd77:2::2', 5353)]:
    threading.Thread(target=args[0], args=args[1:], daemon=True).start()
print('up', flush=True)
threading.Event().wait()
'''

# The client: one exchange per line of argv, and a held TCP connection per family until stdin ends.
CLIENT_PY = r'''
import socket, sys
held = []
for spec in sys.argv[1:]:
    kind, host, port = spec.split(',')
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    if kind == 'udp':
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(2)
        s.sendto(b'ping', (host, int(port))); s.recvfrom(64); s.close()
    else:
        s = socket.create_connection((host, int(port)), timeout=2)
        s.sendall(b'ping' * 100); s.recv(4096)
        if kind == 'hold': held.append(s)
        else: s.close()
print('sent', flush=True)
sys.stdin.read()
for s in held: s.close()
'''


def sh(*argv, ns=None, check=True, input=None):
    cmd = (['ip', 'netns', 'exec', ns] if ns else []) + list(argv)
    done = subprocess.run(cmd, input=input, text=True, capture_output=True)
    if check and done.returncode != 0:
        sys.exit(f'capture-corpus.py: {" ".join(cmd)} failed ({done.returncode}): {done.stderr.strip()}')
    return done


def topology():
    for ns in (CLIENT, ROUTER, SERVER):
        sh('ip', 'netns', 'add', ns)
        sh('ip', 'link', 'set', 'lo', 'up', ns=ns)
    sh('ip', 'link', 'add', 'c0', 'netns', CLIENT, 'type', 'veth', 'peer', 'r0', 'netns', ROUTER)
    sh('ip', 'link', 'add', 'r1', 'netns', ROUTER, 'type', 'veth', 'peer', 's0', 'netns', SERVER)
    links = [(CLIENT, 'c0', '10.77.1.2/24', 'fd77:1::2/64'), (ROUTER, 'r0', '10.77.1.1/24', 'fd77:1::1/64'),
             (ROUTER, 'r1', '10.77.2.1/24', 'fd77:2::1/64'), (SERVER, 's0', '10.77.2.2/24', 'fd77:2::2/64')]
    for ns, dev, v4, v6 in links:
        sh('ip', 'addr', 'add', v4, 'dev', dev, ns=ns)
        sh('ip', 'addr', 'add', v6, 'dev', dev, 'nodad', ns=ns)
        sh('ip', 'link', 'set', dev, 'up', ns=ns)
    sh('ip', 'route', 'add', 'default', 'via', '10.77.1.1', ns=CLIENT)
    sh('ip', '-6', 'route', 'add', 'default', 'via', 'fd77:1::1', ns=CLIENT)
    sh('ip', 'route', 'add', 'default', 'via', '10.77.2.1', ns=SERVER)
    sh('ip', '-6', 'route', 'add', 'default', 'via', 'fd77:2::1', ns=SERVER)
    sh('nft', '-f', '-', ns=ROUTER, input=ROUTER_RULES)
    for knob, value in [('net.ipv4.ip_forward', 1), ('net.ipv6.conf.all.forwarding', 1),
                        ('net.netfilter.nf_conntrack_acct', 1), ('net.netfilter.nf_conntrack_timestamp', 1),
                        ('net.netfilter.nf_conntrack_events', 1),
                        # Short timeouts: flows end (DESTROY) within seconds, not minutes.
                        ('net.netfilter.nf_conntrack_tcp_timeout_time_wait', 1),
                        ('net.netfilter.nf_conntrack_tcp_timeout_close_wait', 1),
                        ('net.netfilter.nf_conntrack_udp_timeout', 1),
                        ('net.netfilter.nf_conntrack_icmp_timeout', 1),
                        ('net.netfilter.nf_conntrack_icmpv6_timeout', 1)]:
        sh('sysctl', '-qw', f'{knob}={value}', ns=ROUTER)


def teardown():
    for ns in (CLIENT, ROUTER, SERVER):
        sh('ip', 'netns', 'del', ns, check=False)


def messages(data):
    """(type, flags, seq, payload) of each netlink message in one datagram."""
    out, at = [], 0
    while at + 16 <= len(data):
        length, mtype, flags, seq, _pid = struct.unpack_from('=IHHII', data, at)
        if length < 16 or at + length > len(data):
            break
        out.append((mtype, flags, seq, data[at + 16:at + length]))
        at += (length + 3) & ~3
    return out


def attrs(buf):
    out, at = {}, 0
    while at + 4 <= len(buf):
        length, atype = struct.unpack_from('=HH', buf, at)
        if length < 4:
            break
        out[atype & 0x3fff] = buf[at + 4:at + length]
        at += (length + 3) & ~3
    return out


def kind(data, source):
    """A name for what a datagram holds: its first message's event, family, protocol, NAT…"""
    msgs = messages(data)
    if not msgs:
        return f'{source}-empty'
    mtype, flags, _seq, payload = msgs[0]
    if mtype == NLMSG_ERROR:
        return f'{source}-error'
    if mtype == NLMSG_DONE:
        return f'{source}-done'
    sub = mtype & 0xff
    event = {IPCTNL_MSG_CT_NEW: 'update', IPCTNL_MSG_CT_DELETE: 'destroy'}.get(sub, f'type{sub}')
    if sub == IPCTNL_MSG_CT_NEW and flags & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL:
        event = 'new'
    family = {2: 'v4', 10: 'v6'}.get(payload[0], f'af{payload[0]}')
    a = attrs(payload[4:])
    proto = 'proto?'
    orig = attrs(a.get(CTA_TUPLE_ORIG, b''))
    num = attrs(orig.get(CTA_TUPLE_PROTO, b'')).get(CTA_PROTO_NUM)
    if num:
        proto = {6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6'}.get(num[0], f'p{num[0]}')
    status = struct.unpack('>I', a[CTA_STATUS])[0] if len(a.get(CTA_STATUS, b'')) == 4 else 0
    extra = [name for bit, name in [(IPS_SRC_NAT, 'snat'), (IPS_DST_NAT, 'dnat')] if status & bit]
    extra += [name for at, name in [(CTA_MARK, 'mark'), (CTA_ZONE, 'zone')] if at in a]
    parts = [source, event, family, proto] + extra
    if len(msgs) > 1:
        parts.append(f'x{len(msgs)}')
    if msgs[-1][0] == NLMSG_DONE:
        parts.append('done')
    return '-'.join(parts)


def listen(outdir):
    """In the router namespace: record datagrams until stdin says stop; 'dump' and 'error' on
    stdin send a table dump request or a bad request on a second socket."""
    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    events.bind((0, GROUPS))
    requests = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    requests.bind((0, 0))
    kept, seen = {}, 0
    print('ready', flush=True)
    seq = 1000
    while True:
        ready, _, _ = select.select([events, requests, sys.stdin], [], [])
        if sys.stdin in ready:
            line = sys.stdin.readline().strip()
            if line in ('stop', ''):
                break
            seq += 1
            if line == 'dump':
                # IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC: both families, as native/reader.cc asks.
                flags = NLM_F_REQUEST | NLM_F_DUMP
                body = struct.pack('=BBH', socket.AF_UNSPEC, 0, 0)
            else:
                # A GET with no tuple: the kernel answers NLMSG_ERROR (EINVAL).
                flags = NLM_F_REQUEST | NLM_F_ACK
                body = struct.pack('=BBH', socket.AF_INET, 0, 0)
            mtype = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
            requests.send(struct.pack('=IHHII', 16 + len(body), mtype, flags, seq, 0) + body)
        for sock, source in ((events, 'event'), (requests, 'reply')):
            if sock not in ready:
                continue
            data = sock.recv(1 << 20)
            seen += 1
            name = kind(data, source)
            kept.setdefault(name, [])
            if len(kept[name]) < KEEP_PER_KIND and data not in kept[name]:
                kept[name].append(data)
    os.makedirs(outdir, exist_ok=True)
    for name, datagrams in sorted(kept.items()):
        for i, data in enumerate(datagrams):
            with open(os.path.join(outdir, f'{name}-{i + 1}.bin'), 'wb') as f:
                f.write(data)
    print(f'kept {sum(map(len, kept.values()))} of {seen} datagrams in {len(kept)} kinds',
          file=sys.stderr, flush=True)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--listen':
        return listen(sys.argv[2])
    if os.geteuid() != 0:
        sys.exit('capture-corpus.py: creates network namespaces: run it as root')
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'corpus'))
    children = []
    try:
        topology()
        server = subprocess.Popen(['ip', 'netns', 'exec', SERVER, sys.executable, '-c', SERVER_PY],
                                  stdout=subprocess.PIPE, text=True)
        children.append(server)
        assert server.stdout.readline().strip() == 'up'
        listener = subprocess.Popen(['ip', 'netns', 'exec', ROUTER, sys.executable, __file__, '--listen', outdir],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(listener)
        assert listener.stdout.readline().strip() == 'ready'

        def tell(line):
            listener.stdin.write(line + '\n')
            listener.stdin.flush()

        flows = ['tcp,10.77.2.2,80', 'tcp,fd77:2::2,80', 'tcp,10.77.1.1,8080',
                 'udp,10.77.2.2,53', 'udp,fd77:2::2,53', 'udp,10.77.2.2,5353', 'udp,fd77:2::2,5353',
                 'hold,10.77.2.2,80', 'hold,fd77:2::2,80']
        client = subprocess.Popen(['ip', 'netns', 'exec', CLIENT, sys.executable, '-c', CLIENT_PY] + flows,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(client)
        assert client.stdout.readline().strip() == 'sent'
        sh('ping', '-c', '2', '-i', '0.2', '-W', '2', '10.77.2.2', ns=CLIENT)
        sh('ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd77:2::2', ns=CLIENT)
        time.sleep(0.5)
        tell('dump')  # the held connections and whatever has not expired yet
        time.sleep(0.5)
        tell('error')
        client.stdin.close()  # closes the held connections
        client.wait(timeout=10)
        time.sleep(4)  # one-second timeouts, then conntrack's garbage collector sends DESTROY
        sh('conntrack', '-F', ns=ROUTER, check=False)  # whatever is left ends now
        sh('conntrack', '-F', '-f', 'ipv6', ns=ROUTER, check=False)
        time.sleep(0.5)
        tell('stop')
        listener.wait(timeout=10)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
        teardown()


if __name__ == '__main__':
    main()
