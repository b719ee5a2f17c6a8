// The time that billing decisions read (override and subscription expiry, redemption code
// expiry). Production follows the system clock; tests move it forward instead of sleeping.
export class Clock {
  private offsetMs = 0;

  nowMs(): number {
    return Date.now() + this.offsetMs;
  }

  now(): Date {
    return new Date(this.nowMs());
  }

  /** Tests only: move this process's clock by `ms` (cumulative). */
  advance(ms: number): void {
    this.offsetMs += ms;
  }

  /** Tests only: back to the system clock. */
  reset(): void {
    this.offsetMs = 0;
  }
}
