/**
 * An unknown command prints what etcdctl (cobra) prints, with exit code 1:
 *   Error: unknown command "foo" for "coord"
 *   Run 'coord --help' for usage.
 *   Error: unknown command "foo" for "coord"
 */
import type { Hook } from '@oclif/core/hooks';
import { ExitCode } from '../errors';

const hook: Hook<'command_not_found'> = async function (opts) {
  const name = opts.id.split(':')[0];
  const bin = opts.config.bin;
  const message = `Error: unknown command ${JSON.stringify(name)} for ${JSON.stringify(bin)}`;
  process.stderr.write(`${message}\nRun '${bin} --help' for usage.\n${message}\n`);
  process.exitCode = ExitCode.Error;
};

export default hook;
