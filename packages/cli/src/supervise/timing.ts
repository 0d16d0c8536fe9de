/**
 * How long CMD gets between SIGTERM and SIGKILL when the lock (or leadership) is lost, and how
 * early the session must declare itself lost so that CMD's group is gone before the server
 * could expire the lease and hand the lock to somebody else.
 *
 * The client computes the lease's deadline from when each keep-alive was *sent* (the server
 * restarts the TTL no earlier than that) and fires `lost` `safetyMarginMs` before it
 * (packages/client/src/lease.ts, packages/recipes/src/session.ts). We then send SIGTERM at
 * once, SIGKILL after `graceMs`, and a SIGKILLed group is gone within milliseconds. So:
 *
 *   safetyMarginMs = graceMs + slackMs
 *
 * where `slackMs` (TTL/10, between 100 and 500 ms) covers the SIGKILL itself, timer lateness
 * and a busy event loop. The margin may not exceed TTL/4: keep-alives go out every TTL/3, and a
 * larger margin would declare the lock lost whenever a single keep-alive was slow.
 *
 * Not covered, and said so in docs/EXIT-CODES.md: the lease revoked or the key deleted from
 * outside (the lock is free at once; CMD is stopped as fast as we learn of it), a clock that
 * runs slower than the server's by more than the slack, and processes that leave CMD's group
 * (setsid, double-fork daemons).
 */
import { badArgs } from '../errors';
import { goParseDurationMs } from '../output/go';

export interface LossTiming {
  readonly ttlSeconds: number;
  /** SIGTERM to SIGKILL. */
  readonly graceMs: number;
  /** How long before the computed lease expiry the session is declared lost. */
  readonly safetyMarginMs: number;
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Default grace: TTL/10, between 100 ms and 2 s. */
export function defaultGraceMs(ttlSeconds: number): number {
  return Math.round(clamp((ttlSeconds * 1000) / 10, 100, 2000));
}

/** The timing for a session of `ttlSeconds`; `graceMs` 0 or undefined picks the default. */
export function lossTiming(ttlSeconds: number, graceMs?: number): LossTiming {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw badArgs(`--ttl must be a positive number of seconds, got ${ttlSeconds}`);
  const ttlMs = ttlSeconds * 1000;
  const grace = graceMs && graceMs > 0 ? Math.round(graceMs) : defaultGraceMs(ttlSeconds);
  const slackMs = Math.round(clamp(ttlMs / 10, 100, 500));
  const safetyMarginMs = grace + slackMs;
  const maxMarginMs = ttlMs / 4;
  if (safetyMarginMs > maxMarginMs) {
    throw badArgs(
      `--grace ${grace}ms is too long for --ttl ${ttlSeconds}: CMD must be gone before the lease can expire (grace + ${slackMs}ms may be at most TTL/4 = ${maxMarginMs}ms)`,
      `raise --ttl, or lower --grace to at most ${Math.max(0, Math.floor(maxMarginMs - slackMs))}ms.`,
    );
  }
  return Object.freeze({ ttlSeconds, graceMs: grace, safetyMarginMs });
}

/**
 * A time span from the command line: plain seconds (`5`, `0.5`) as `--ttl S` and
 * `--timeout S` read, or a Go duration (`1500ms`, `2s`, `1m`). Empty: undefined.
 */
export function parseSeconds(flag: string, raw: string): number | undefined {
  if (raw === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  try {
    const ms = goParseDurationMs(raw);
    if (ms < 0) throw new Error('negative');
    return ms;
  } catch {
    throw badArgs(`invalid value ${JSON.stringify(raw)} for --${flag}: want seconds (5, 0.5) or a duration (1500ms, 2s)`);
  }
}
