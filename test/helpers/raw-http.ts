// Raw HTTP over a socket, for what an HTTP client library would never send: malformed request
// lines and headers, over-long URLs, conflicting framing. Shared by the fuzz test (the API, the
// gateway inside serve) and the gateway test (the proxying gateway).
import net from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1', () => sock.write(payload));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(String(payload).slice(0, 80))}`));
    }, timeoutMs);
    sock.on('data', (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      if (end >= 0 && len && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(len[1])) sock.end();
    });
    sock.on('error', () => undefined); // the server may reset after answering
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = raw.split('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

/** Requests Node's parser (or the body limit) refuses, with the status the envelope must carry. */
export const PROTOCOL_CASES: Array<[string, string | Buffer, number]> = [
  ['over-long URL', `GET /v1/threads?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
  ['over-long header', `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ['many headers', `GET /v1/me HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`, 431],
  ['garbage request line', 'GARBAGE\r\n\r\n', 400],
  ['bad HTTP version', 'GET /v1/me HTTP/9.9\r\nHost: x\r\n\r\n', 400],
  ['space in the header name', 'GET /v1/me HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n', 400],
  ['control character in a header value', 'GET /v1/me HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n', 400],
  ['NUL in the request line', 'GET /v1/me\u0000 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['Content-Length and Transfer-Encoding', 'POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['bad Content-Length', 'POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
  ['two Content-Lengths', 'POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}', 400],
  ['bad chunk size', 'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400],
  ['unknown method', 'FOO /v1/me HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['bare LF line ends', 'GET /v1/me HTTP/1.1\nHost: x\n\n', 400],
  ['no Host header', 'GET /v1/me HTTP/1.1\r\n\r\n', 400],
  ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
  ['unsupported Expect', 'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', 417],
  [
    'chunked body over 1 MiB',
    Buffer.concat([
      Buffer.from('POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'),
      ...Array.from({ length: 20 }, () => Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`)),
      Buffer.from('0\r\n\r\n'),
    ]),
    413,
  ],
  ['Content-Length over 1 MiB', `POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n{}`, 413],
  ['malformed escape in the path', 'GET /v1/threads/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n', 400],
];
