import type { Logger } from '../phi/logger.js';
import type { Pool } from './pool.js';

export interface HealthEvents {
  nodeReadiness(node: string, ready: boolean): void;
}

/**
 * Active health checks per pool: ServerReady and ModelReady for each model
 * routed to the pool, every `healthCheck.intervalMs`. A node leaves rotation
 * at its first failed check and rejoins after `healthyThreshold` passes in a
 * row (no flapping); a node seen for the first time joins at once.
 */
export class HealthChecker {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly pools: Iterable<Pool>, private readonly events: HealthEvents, private readonly log: Logger) {}

  /** Runs the first round, then keeps checking at each pool's interval. */
  async start(): Promise<void> {
    const pools = [...this.pools];
    await Promise.all(pools.map((pool) => this.check(pool)));
    for (const pool of pools) {
      const timer = setInterval(() => void this.check(pool), pool.config.healthCheck.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  async check(pool: Pool): Promise<void> {
    const { timeoutMs, healthyThreshold } = pool.config.healthCheck;
    await Promise.all(pool.members.map(async (node) => {
      const wasReady = node.serverReady;
      let passed = false;
      try {
        passed = await node.client.serverReady(timeoutMs);
        const ready = await Promise.all(pool.models.map((m) => node.client.modelReady(m, timeoutMs).catch(() => false)));
        pool.models.forEach((m, i) => node.setModelReady(m, ready[i]!));
      } catch {
        passed = false;
      }
      node.consecutivePasses = passed ? node.consecutivePasses + 1 : 0;
      if (!passed) node.serverReady = false;
      else if (!node.serverReady && (!node.everReady || node.consecutivePasses >= healthyThreshold)) node.serverReady = node.everReady = true;
      if (node.serverReady !== wasReady) {
        this.log.info({ node: node.id, ready: node.serverReady }, node.serverReady ? 'node joined rotation' : 'node left rotation');
        this.events.nodeReadiness(node.id, node.serverReady);
      }
    }));
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
  }
}
