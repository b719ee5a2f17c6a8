// A request the gateway inside `arkloop serve` hands straight to this process's API, without
// a network hop (ARKLOOP_SERVE_GATEWAY=1). What the gateway would have sent in headers — the
// client IP it resolved and its trace id — rides on the request object under a symbol no
// client can set, and the API reports who made the request back the same way instead of in
// the X-Arkloop-* response headers the gateway would otherwise strip (api.md §30).
import type { IncomingMessage } from 'node:http';

export interface LocalForward {
  clientIp: string;
  traceId: string;
  /** Filled by the API: the identity headers it would have sent to a proxying gateway. */
  identity: Record<string, string> | null;
}

const LOCAL_FORWARD = Symbol('arkloop.localForward');

type Marked = IncomingMessage & { [LOCAL_FORWARD]?: LocalForward };

export function markLocalForward(req: IncomingMessage, forward: LocalForward): void {
  (req as Marked)[LOCAL_FORWARD] = forward;
}

export function localForwardOf(req: IncomingMessage): LocalForward | undefined {
  return (req as Marked)[LOCAL_FORWARD];
}
