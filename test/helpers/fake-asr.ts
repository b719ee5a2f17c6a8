// A local speech-to-text server speaking the OpenAI transcription wire format (which Groq
// shares): `POST …/audio/transcriptions`, multipart/form-data with `file` and `model` (plus
// optional `language`, `response_format`), bearer key; answers JSON `{text}`, or OpenAI-style
// error bodies. The multipart body is parsed by the platform's own Request.formData(), not by
// the code under test. Keys choose the behaviour:
//   bad-…      401 invalid_api_key          broken-…   500
//   garbage-…  200 with a non-JSON body     hang-…     never answers
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedTranscription {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  fields: Record<string, string>;
  file: { filename: string; type: string; bytes: Buffer } | null;
}

export interface FakeAsr {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  received: ReceivedTranscription[];
  close(): Promise<void>;
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const invalidRequest = (message: string) => ({ error: { message, type: 'invalid_request_error', param: null, code: null } });

export async function startFakeAsr(): Promise<FakeAsr> {
  const received: ReceivedTranscription[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const auth = String(req.headers.authorization ?? '');
    if (auth.startsWith('Bearer hang-')) return; // never answers
    if (req.method !== 'POST' || !req.url?.endsWith('/audio/transcriptions')) return json(res, 404, invalidRequest(`unknown path ${req.url}`));

    const entry: ReceivedTranscription = { method: req.method, path: req.url, headers: req.headers, fields: {}, file: null };
    received.push(entry);
    let form: FormData;
    try {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      form = await new Request('http://fake.invalid/', { method: 'POST', headers, body }).formData();
    } catch {
      return json(res, 400, invalidRequest('could not parse multipart form'));
    }
    for (const [name, value] of form.entries()) {
      if (typeof value === 'string') entry.fields[name] = value;
      else if (name === 'file') entry.file = { filename: (value as File).name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) };
    }

    if (auth.startsWith('Bearer bad-')) return json(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    if (auth.startsWith('Bearer broken-')) return json(res, 500, { error: { message: 'The server had an error', type: 'server_error', param: null, code: null } });
    if (auth.startsWith('Bearer garbage-')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html>gateway</html>');
    }
    if (!entry.file) return json(res, 400, invalidRequest("'file' is a required property"));
    if (!entry.fields.model) return json(res, 400, invalidRequest("'model' is a required property"));
    json(res, 200, { text: `${entry.fields.model} heard ${entry.file.bytes.length} bytes of ${entry.file.filename}`, usage: { type: 'duration', seconds: 1 } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
