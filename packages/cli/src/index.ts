/**
 * @coord/cli: the `coord` command line (oclif). Exports the pieces other tools reuse: the base
 * command, etcdctl's printers, Go formatting helpers and the error catalogue.
 */
export { BaseCommand, oclifFlags, type GlobalOptions } from './base-command';
export { CliError, ERROR_CODES, ExitCode, toCliError, type ErrorCode } from './errors';
export { GLOBAL_FLAGS, normalizeArgv } from './flags/global';
export { parseArgv, resolveFlag, FlagParseError, type FlagSpec, type FlagValue } from './flags/pflag';
export * from './output/printers';
export * from './output/go';
export { renderTable } from './output/table';
export { toJsonSafe } from './output/json-result';
