// The inverse of the import's parser: how conntrack prints an event (libnetfilter_conntrack's default).
import { formatAddress } from '../../../analyzer/core/address.js';
import { type CtEvent, EventType, Status, type Tuple } from '../../../journal/event.js';
import { PORT_PROTOS } from '../../helpers/arbitraries.js';

const TCP_NAMES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
];
const PROTO_NAMES = new Map([
  [1, 'icmp'],
  [6, 'tcp'],
  [17, 'udp'],
  [58, 'icmpv6'],
  [132, 'sctp'],
]);
const TAGS = ['', '    [NEW]', ' [UPDATE]', '[DESTROY]', ''];

function tupleText(tu: Tuple, proto: number, packets?: number, bytes?: number): string {
  const parts = [`src=${formatAddress(tu.src)}`, `dst=${formatAddress(tu.dst)}`];
  if (PORT_PROTOS.has(proto)) parts.push(`sport=${tu.sport}`, `dport=${tu.dport}`);
  if (proto === 1 || proto === 58) {
    parts.push(`type=${tu.icmpType}`, `code=${tu.icmpCode}`, `id=${tu.icmpId}`);
  }
  if (packets !== undefined) parts.push(`packets=${packets}`, `bytes=${bytes}`);
  return parts.join(' ');
}

export function conntrackText(
  ev: CtEvent,
  o: { stamp: boolean; extended: boolean; id: boolean },
): string {
  const out: string[] = [];
  const s = Math.floor(ev.time / 1e6);
  const stamp = o.stamp ? `[${s}.${String(ev.time - s * 1e6).padStart(6, '0')}]\t` : '';
  const tag = TAGS[ev.type] ?? '';
  if (tag !== '') out.push(tag);
  if (o.extended) out.push(ev.family === 4 ? 'ipv4     2' : 'ipv6     10');
  out.push(`${(PROTO_NAMES.get(ev.proto) ?? 'unknown').padEnd(8)} ${ev.proto}`);
  if (ev.type !== EventType.DESTROY) out.push('120');
  if (ev.tcpState !== undefined) out.push(TCP_NAMES[ev.tcpState] as string);
  const c = ev.counters;
  out.push(tupleText(ev.orig, ev.proto, c?.origPackets, c?.origBytes));
  if ((ev.status & Status.SEEN_REPLY) === 0) out.push('[UNREPLIED]');
  out.push(tupleText(ev.reply, ev.proto, c?.replyPackets, c?.replyBytes));
  if ((ev.status & Status.ASSURED) !== 0) out.push('[ASSURED]');
  out.push(`mark=${ev.mark ?? 0}`);
  if (ev.zone !== undefined) out.push(`zone=${ev.zone}`);
  out.push('use=1');
  if (o.id) out.push(`id=${ev.id}`);
  return `${stamp}${out.join(' ')}`;
}
