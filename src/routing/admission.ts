import { CdsError } from '../errors.js';

type Release = () => void;

/**
 * Per-pool load shedding: at most `limit` requests go to the pool's nodes at
 * once, at most `queueSize` wait (each until its own deadline), and anything
 * beyond is refused at once with Retry-After — a queue without bound only
 * turns overload into timeouts for everyone.
 */
export class Admission {
  active = 0;
  private readonly waiting: Array<{ grant: (release: Release) => void; timer: NodeJS.Timeout }> = [];

  constructor(private readonly pool: string, private readonly limit: number, private readonly queueSize: number) {}

  get queued(): number {
    return this.waiting.length;
  }

  acquire(deadline: number): Promise<Release> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queueSize) {
      return Promise.reject(new CdsError('resource_exhausted', `pool '${this.pool}' is at capacity (${this.limit} in flight, ${this.queueSize} queued); retry shortly`, { 'retry-after': '1' }));
    }
    return new Promise<Release>((resolve, reject) => {
      const entry = {
        grant: resolve,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(new CdsError('deadline_exceeded', `deadline passed while the request waited for pool '${this.pool}'`));
        }, Math.max(0, deadline - Date.now())),
      };
      this.waiting.push(entry);
    });
  }

  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant(this.releaser()); // the slot passes straight to the next in line
      } else {
        this.active--;
      }
    };
  }
}
