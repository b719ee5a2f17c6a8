// What Node's HTTP server answers on its own — requests its parser refuses, an Expect it does
// not support — answered instead with the contract's envelope and a trace id (§1.5), by every
// listener of the platform (the API and the gateway).
import type { ConnectionError, FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody } from './errors.js';

/** 32 lowercase hex characters (§1.1). */
export function newTraceId(): string {
  return randomUUID().replace(/-/g, '');
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them — a malformed request line or
 * header, headers or URL over the size limit (431), a request not received in time (408) —
 * still answer with the envelope and a trace id (§1.5). Raw socket: status line, headers, body.
 */
export function clientErrorHandler(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'request headers or URL too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'the request was not received in time']
        : [400, 'Bad Request', 'malformed HTTP request'];
  const traceId = newTraceId();
  const body = JSON.stringify(errorBody('validation.error', message, {}, traceId));
  this.log.debug({ err: err.message, code: err.code, trace_id: traceId }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Trace-Id: ${traceId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/** An Expect other than 100-continue: Node would answer its own bare 417. */
export function refuseUnsupportedExpect(server: Server): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const traceId = newTraceId();
    const body = JSON.stringify(errorBody('validation.error', 'unsupported Expect header', {}, traceId));
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-trace-id': traceId, connection: 'close' });
    res.end(body);
    req.resume();
  });
}
