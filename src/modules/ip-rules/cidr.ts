// CIDRs of IP rules (api.md §23): parsing and normalising what a rule stores, and the matcher
// an account's rules are compiled into once, so a request costs a few integer comparisons.
// ipaddr.js parses and prints addresses; the prefix arithmetic on 32-bit words is ours because
// ipaddr.js re-walks its part arrays for every match, and the hot path checks up to 200 rules.
import ipaddr from 'ipaddr.js';

export type IpRuleType = 'allowlist' | 'blocklist';
export type IpVerdict = 'policy.ip_blocked' | 'policy.ip_not_allowed';

/** An address as 32-bit words: one for IPv4, four for IPv6. */
interface Address {
  v4: boolean;
  words: number[];
}

export interface ParsedCidr extends Address {
  prefix: number;
  /** The network address and prefix, e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  text: string;
}

function v4Words(a: ipaddr.IPv4): number[] {
  const [b0, b1, b2, b3] = a.octets;
  return [((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0];
}

function v6Words(a: ipaddr.IPv6): number[] {
  const p = a.parts;
  return [0, 2, 4, 6].map((i) => ((p[i] << 16) | p[i + 1]) >>> 0);
}

/** The mask of word `i` (32 bits each) under a prefix of `prefix` bits. */
function maskOf(prefix: number, i: number): number {
  const bits = Math.max(0, Math.min(32, prefix - 32 * i));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The canonical text of an address (dotted quad; RFC 5952 IPv6). */
function addressText(a: Address): string {
  const w = a.words;
  return a.v4
    ? ipaddr.fromByteArray([w[0] >>> 24, (w[0] >>> 16) & 255, (w[0] >>> 8) & 255, w[0] & 255]).toString()
    : new ipaddr.IPv6(w.flatMap((x) => [x >>> 16, x & 0xffff])).toString();
}

/** A strictly written address (dotted-quad IPv4, or IPv6 without a zone), else null. */
function parseStrict(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && !text.includes('%') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return null;
}

/**
 * A rule's `cidr` as stored: IPv4 or IPv6, a single address meaning /32 or /128, reduced to its
 * network address. An IPv4-mapped IPv6 range (::ffff:a.b.c.d/96 and longer) becomes the IPv4
 * range it covers, since clients with such addresses are matched as IPv4. Null when malformed.
 */
export function parseCidr(input: string): ParsedCidr | null {
  const slash = input.indexOf('/');
  const addr = parseStrict(slash < 0 ? input : input.slice(0, slash));
  if (!addr) return null;
  let v4 = addr.kind() === 'ipv4';
  let prefix = v4 ? 32 : 128;
  if (slash >= 0) {
    const p = input.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > prefix) return null;
    prefix = Number(p);
  }
  let words = v4 ? v4Words(addr as ipaddr.IPv4) : v6Words(addr as ipaddr.IPv6);
  if (!v4 && prefix >= 96 && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    v4 = true;
    words = [words[3]];
    prefix -= 96;
  }
  words = words.map((w, i) => (w & maskOf(prefix, i)) >>> 0);
  return { v4, words, prefix, text: `${addressText({ v4, words })}/${prefix}` };
}

/**
 * A client address (socket or X-Forwarded-For): an IPv4-mapped IPv6 address counts as IPv4; a
 * zone, brackets and a port are ignored. Null when it is not an address.
 */
export function parseClientAddress(raw: string): Address | null {
  let text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1];
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(text)) text = text.slice(0, text.indexOf(':'));
  const zone = text.indexOf('%');
  if (zone >= 0 && text.includes(':')) text = text.slice(0, zone);
  const addr = parseStrict(text);
  if (!addr) return null;
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return { v4: true, words: v4Words((addr as ipaddr.IPv6).toIPv4Address()) };
  return addr.kind() === 'ipv4' ? { v4: true, words: v4Words(addr as ipaddr.IPv4) } : { v4: false, words: v6Words(addr as ipaddr.IPv6) };
}

/** A client address written canonically (IPv4-mapped as IPv4), so one IP has one spelling; else the text as given. */
export function canonicalClientIp(raw: string): string {
  const a = parseClientAddress(raw);
  return a ? addressText(a) : raw;
}

/** Flat (network word, mask word) pairs per rule: 2 numbers for IPv4, 8 for IPv6. */
class RangeSet {
  readonly v4: number[] = [];
  readonly v6: number[] = [];
  size = 0;

  add(c: ParsedCidr): void {
    const into = c.v4 ? this.v4 : this.v6;
    c.words.forEach((w, i) => into.push(w, maskOf(c.prefix, i)));
    this.size++;
  }

  has(a: Address): boolean {
    const [w0, w1, w2, w3] = a.words;
    if (a.v4) {
      const r = this.v4;
      for (let i = 0; i < r.length; i += 2) if (((w0 & r[i + 1]) >>> 0) === r[i]) return true;
      return false;
    }
    const r = this.v6;
    for (let i = 0; i < r.length; i += 8) {
      if (((w0 & r[i + 1]) >>> 0) === r[i] && ((w1 & r[i + 3]) >>> 0) === r[i + 2] && ((w2 & r[i + 5]) >>> 0) === r[i + 4] && ((w3 & r[i + 7]) >>> 0) === r[i + 6]) return true;
    }
    return false;
  }
}

/** A set of CIDRs (e.g. the gateway's trusted proxies): does it contain an address? */
export class CidrSet {
  private readonly ranges = new RangeSet();

  constructor(cidrs: Iterable<string>) {
    for (const text of cidrs) {
      const c = parseCidr(text.trim());
      if (c) this.ranges.add(c);
    }
  }

  get size(): number {
    return this.ranges.size;
  }

  has(ip: string): boolean {
    const a = parseClientAddress(ip);
    return a !== null && this.ranges.has(a);
  }
}

const MEMO_LIMIT = 4096;

/** An account's rules, compiled: `check(ip)` answers the §23 verdict for a client address. */
export class IpMatcher {
  private readonly block = new RangeSet();
  private readonly allow = new RangeSet();
  // Verdicts by address text: the same clients come back request after request.
  private readonly memo = new Map<string, IpVerdict | null>();

  constructor(rules: ReadonlyArray<{ type: IpRuleType; cidr: string }>) {
    for (const r of rules) {
      const c = parseCidr(r.cidr);
      if (c) (r.type === 'blocklist' ? this.block : this.allow).add(c);
    }
  }

  get empty(): boolean {
    return this.block.size === 0 && this.allow.size === 0;
  }

  /** Blocklist wins; then, when any allowlist rule exists, the address must match one. */
  check(ip: string): IpVerdict | null {
    if (this.empty) return null;
    const known = this.memo.get(ip);
    if (known !== undefined) return known;
    const addr = parseClientAddress(ip);
    let verdict: IpVerdict | null = null;
    if (addr && this.block.has(addr)) verdict = 'policy.ip_blocked';
    else if (this.allow.size > 0 && !(addr && this.allow.has(addr))) verdict = 'policy.ip_not_allowed';
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(ip, verdict);
    return verdict;
  }
}

export const NO_RULES = new IpMatcher([]);
