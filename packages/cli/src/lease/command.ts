/**
 * What `watch` and the `lease` commands share on top of BaseCommand: their printer (etcdctl's
 * Watch/Grant/Revoke/KeepAlive/TimeToLive/Leases printers, output/watch-lease.ts), JSON lines
 * for `--json` on the streaming ones, and etcdctl's leaseFromArgs.
 */
import { BaseCommand } from '../base-command';
import { badArgs } from '../errors';
import { toJsonSafe } from '../output/json-result';
import { goParseInt } from '../output/go';
import { JsonLinesPrinter, newWatchLeasePrinter, type WatchLeasePrinter } from '../output/watch-lease';

export abstract class WatchLeaseCommand extends BaseCommand {
  /**
   * The printer for `-w` (validated as etcdctl's mustClientFromCmd does: call `client()` or
   * this before sending anything). With `--json`, streaming commands print JSON lines.
   */
  protected watchLeasePrinter(options: { jsonLines?: boolean } = {}): WatchLeasePrinter {
    this.printer();
    if (options.jsonLines && this.jsonEnabled()) {
      return new JsonLinesPrinter((v) => process.stdout.write(JSON.stringify(toJsonSafe(v)) + '\n'));
    }
    const g = this.global();
    return newWatchLeasePrinter(g.writeOut, this.out, { hex: g.hex }) as WatchLeasePrinter;
  }
}

/** etcdctl's leaseFromArgs: `strconv.ParseInt(arg, 16, 64)`, ExitBadArgs on failure. */
export function leaseFromArgs(arg: string): bigint {
  try {
    return goParseInt(arg, 16);
  } catch (err) {
    throw badArgs(`bad lease ID arg (${(err as Error).message}), expecting ID in Hex`, 'pass the lease ID in hex, as `coord lease grant` and `coord lease list` print it.');
  }
}
