// The gateway's risk score and user-agent class (api.md §30, decided rules). The per-IP
// history it scores (401/403 answers in the last 10 min, a 429 in the last minute) is kept in
// this gateway's memory: a second gateway scores from its own traffic (decided).

export type UaType = 'browser' | 'cli' | 'sdk' | 'bot' | 'unknown';

const BOT = /bot|crawler|spider|slurp/i;
const CLI = /^(curl\/|Wget\/|HTTPie\/|arkloop-cli)/;
const SDK = /python-requests|python-httpx|aiohttp|axios|node-fetch|undici|Go-http-client|okhttp|Java\/|OpenAI\/|Anthropic\//;

export function uaType(ua: string | undefined): UaType {
  if (!ua) return 'unknown';
  if (BOT.test(ua)) return 'bot';
  if (CLI.test(ua)) return 'cli';
  if (SDK.test(ua)) return 'sdk';
  if (ua.startsWith('Mozilla/')) return 'browser';
  return 'unknown';
}

const KNOWN_PATH = /^\/(v1\/|healthz(?:[/?]|$)|readyz(?:[/?]|$)|metrics(?:[/?]|$)|openapi\.json(?:[?]|$)|docs(?:[/?]|$))/;
const AUTH_WINDOW_MS = 10 * 60_000;
const AUTH_THRESHOLD = 5;
const LIMITED_WINDOW_MS = 60_000;
const MAX_TRACKED = 100_000;

interface IpHistory {
  /** Times of the latest 401/403 answers, oldest first (at most AUTH_THRESHOLD kept). */
  denied: number[];
  last429: number;
}

export class RiskTracker {
  private readonly byIp = new Map<string, IpHistory>();

  score(ip: string, ua: UaType, path: string, now = Date.now()): number {
    let s = ua === 'bot' ? 50 : ua === 'unknown' ? 30 : 0;
    const h = this.byIp.get(ip);
    if (h) {
      if (h.denied.length >= AUTH_THRESHOLD && now - h.denied[0] <= AUTH_WINDOW_MS) s += 30;
      if (now - h.last429 <= LIMITED_WINDOW_MS) s += 20;
    }
    if (!KNOWN_PATH.test(path)) s += 20;
    return Math.min(s, 100);
  }

  /** Records an answer to `ip` that feeds later scores. */
  record(ip: string, status: number, now = Date.now()): void {
    if (status !== 401 && status !== 403 && status !== 429) return;
    let h = this.byIp.get(ip);
    if (!h) {
      if (this.byIp.size >= MAX_TRACKED) this.sweep(now);
      h = { denied: [], last429: 0 };
      this.byIp.set(ip, h);
    }
    if (status === 429) h.last429 = now;
    else {
      h.denied.push(now);
      if (h.denied.length > AUTH_THRESHOLD) h.denied.shift();
    }
  }

  private sweep(now: number): void {
    for (const [ip, h] of this.byIp) {
      const lastDenied = h.denied[h.denied.length - 1] ?? 0;
      if (now - lastDenied > AUTH_WINDOW_MS && now - h.last429 > LIMITED_WINDOW_MS) this.byIp.delete(ip);
    }
    if (this.byIp.size >= MAX_TRACKED) this.byIp.clear();
  }
}
