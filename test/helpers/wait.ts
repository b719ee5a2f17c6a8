// Waiting, bounded, for what another component or process does asynchronously (a delivery, a
// worker, a metric), shared by the tests that poll.

/** Resolves once `pred` holds; fails with `what` after `timeoutMs`. Polls every `everyMs`. */
export async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000, everyMs = 10): Promise<void> {
  const start = Date.now();
  while (!(await pred())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
