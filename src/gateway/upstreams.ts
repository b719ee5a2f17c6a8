// The API addresses behind the gateway (ARKLOOP_GATEWAY_UPSTREAM), taken in turn, skipping
// one that failed a request in the last few seconds or whose /readyz answered other than 200
// at the last probe. When every upstream looks down, they are still tried in turn (one may
// be back before its probe says so).

export interface UpstreamOptions {
  /** How long an upstream that failed a request is skipped. */
  failCooldownMs: number;
  /** Interval of the /readyz probes; 0 = no probes. */
  probeIntervalMs: number;
}

interface Upstream {
  url: string;
  downUntil: number;
  ready: boolean;
}

const PROBE_TIMEOUT_MS = 2_000;

export class Upstreams {
  private readonly list: Upstream[];
  private turn = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    urls: readonly string[],
    private readonly opts: UpstreamOptions,
  ) {
    if (urls.length === 0) throw new Error('no upstream');
    this.list = urls.map((url) => ({ url: url.replace(/\/+$/, ''), downUntil: 0, ready: true }));
  }

  get urls(): string[] {
    return this.list.map((u) => u.url);
  }

  /** The next healthy upstream in round-robin order (or simply the next one when none is). */
  pick(): string {
    const now = Date.now();
    const n = this.list.length;
    for (let i = 0; i < n; i++) {
      const u = this.list[(this.turn + i) % n];
      if (u.ready && now >= u.downUntil) {
        this.turn = (this.turn + i + 1) % n;
        return u.url;
      }
    }
    const u = this.list[this.turn];
    this.turn = (this.turn + 1) % n;
    return u.url;
  }

  /** The next healthy upstream other than `url`, for one retry of a request `url` never got; null when there is none. */
  other(url: string): string | null {
    const now = Date.now();
    const n = this.list.length;
    for (let i = 0; i < n; i++) {
      const u = this.list[(this.turn + i) % n];
      if (u.url !== url && u.ready && now >= u.downUntil) {
        this.turn = (this.turn + i + 1) % n;
        return u.url;
      }
    }
    return null;
  }

  /** A request to `url` could not be delivered: skip it for a while. */
  failed(url: string): void {
    const u = this.list.find((x) => x.url === url);
    if (u) u.downUntil = Date.now() + this.opts.failCooldownMs;
  }

  startProbes(): void {
    if (this.opts.probeIntervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.probe(), this.opts.probeIntervalMs);
    this.timer.unref();
  }

  async probe(): Promise<void> {
    await Promise.all(
      this.list.map(async (u) => {
        try {
          const res = await fetch(`${u.url}/readyz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
          await res.arrayBuffer();
          u.ready = res.status === 200;
          if (u.ready) u.downUntil = 0;
        } catch {
          u.ready = false;
        }
      }),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
