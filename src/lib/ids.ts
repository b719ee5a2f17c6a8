import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

// Random bytes for ids are drawn from a pool refilled 4 KiB at a time: one system call per
// 256 ids instead of one per id (that call showed up in the hot path's profile).
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;

function pooledRandom16(): Uint8Array {
  if (offset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + 16);
  offset += 16;
  return bytes;
}

// Passing our own random bytes makes the library skip its monotonic state, so the same
// rule is kept here: within one millisecond the 32-bit sequence counts up from a random start.
const state = { msecs: -Infinity, seq: 0 };

/** Time-ordered UUID v7 (monotonic within this process): ids double as pagination cursors. */
export function newId(): string {
  const random = pooledRandom16();
  const now = Date.now();
  if (now > state.msecs) {
    state.msecs = now;
    state.seq = ((random[6] & 0x7f) << 24) | (random[7] << 16) | (random[8] << 8) | random[9];
  } else {
    state.seq = (state.seq + 1) | 0;
    if (state.seq === 0) state.msecs++;
  }
  return v7({ random, msecs: state.msecs, seq: state.seq });
}

/** A UUID v7 whose time part is `msecs` (for ids whose first 48 bits must differ, e.g. users: their personal slug is made of them). */
export function newIdAt(msecs: number): string {
  return v7({ random: pooledRandom16(), msecs });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}
