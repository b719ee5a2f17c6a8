// The part of autocannon's programmatic API that loadgen-autocannon.ts uses (the package ships
// no types; @types/autocannon would be another dependency for four fields).
declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request | null;
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
    }
    interface Options {
      url: string;
      connections: number;
      pipelining: number;
      /** Seconds. */
      duration: number;
      /** Seconds. */
      timeout: number;
      requests: Request[];
      initialContext?: Record<string, unknown>;
    }
    interface Result {
      errors: number;
      timeouts: number;
      non2xx: number;
    }
  }
  function autocannon(opts: autocannon.Options, cb: (err: Error | null, result: autocannon.Result) => void): unknown;
  export default autocannon;
}
