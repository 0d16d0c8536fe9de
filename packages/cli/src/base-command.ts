/**
 * The base of every network command (STYLE §12): it owns the global flags (endpoints,
 * timeouts, TLS files, `-w/--write-out`, `--hex`, oclif's `--json`), parses argv with pflag's
 * rules, creates clients lazily (gRPC and the protos are loaded on the first `client()` call,
 * never for `--help`/`--version`), routes every line of output through `this.log`, and maps
 * every failure to etcdctl's text and exit code in one place (`catch`).
 *
 * A command declares its flags once as pflag specs (`static specs`); `static flags` derives
 * oclif flags from them for `--help`. `run()` returns the result object; `--json` prints it.
 *
 * The benchmark reuses this class: `endpointList()`, `clientOptions()`, `flag()`, `out`.
 */
// Subpath imports: the '@oclif/core' index loads ~50 more modules (help, ux, ...) at start-up.
import * as Args from '@oclif/core/args';
import { Command } from '@oclif/core/command';
import * as Flags from '@oclif/core/flags';
import type * as Interfaces from '@oclif/core/interfaces';
import type { Client, ClientOptions } from '@coord/client';
import { CliError, ExitCode, badFeature, toCliError, usageError } from './errors';
import { GLOBAL_FLAGS } from './flags/global';
import { FlagParseError, parseArgv, resolveFlag, type FlagSpec, type FlagValue } from './flags/pflag';
import { toJsonSafe } from './output/json-result';
import { newPrinter, OUTPUT_FORMATS, type Printer, type PrinterOptions, type Sink } from './output/printers';

export { Args };

/** oclif flag definitions (for `--help` only) from pflag specs. */
export function oclifFlags(specs: readonly FlagSpec[], helpGroup?: string): Interfaces.FlagInput {
  const out: Interfaces.FlagInput = {};
  for (const s of specs) {
    if (s.name === 'json') continue; // oclif adds its own
    const common = {
      description: s.description,
      char: s.char as Interfaces.AlphabetLowercase | undefined,
      hidden: s.hidden,
      helpGroup,
    };
    out[s.name] =
      s.kind === 'bool'
        ? Flags.boolean(common)
        : Flags.string({ ...common, default: s.default !== undefined && s.default !== '' ? s.default : undefined });
  }
  return out;
}

const NEWLINE = Buffer.from('\n');

/** Options every client of this invocation shares. */
export interface GlobalOptions {
  readonly endpoints: readonly string[];
  readonly dialTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly writeOut: string;
  readonly hex: boolean;
}

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;
  /** We parse argv ourselves (pflag rules); oclif must not reject extra arguments. */
  static override strict = false;
  static override baseFlags = oclifFlags(GLOBAL_FLAGS, 'GLOBAL');
  /** This command's own flags. */
  static specs: readonly FlagSpec[] = [];

  /** Positional arguments after flag parsing. */
  protected positional: string[] = [];
  private given: ReadonlyMap<string, FlagValue> = new Map();
  private allSpecs = new Map<string, FlagSpec>();
  private globals: GlobalOptions | undefined;
  private readonly clients: Client[] = [];
  private stdinUsed = false;

  /** Write one line to stdout: text through `this.log`, raw bytes (non-UTF-8 values) verbatim. */
  protected readonly out: Sink = (line) => {
    if (typeof line === 'string') {
      this.log('%s', line);
      return;
    }
    const text = line.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(line)) this.log('%s', text);
    else if (!this.jsonEnabled()) process.stdout.write(Buffer.concat([line, NEWLINE]));
  };

  override async init(): Promise<void> {
    await super.init();
    this.parsed = true; // we parse below, with pflag's rules
    const ctor = this.constructor as typeof BaseCommand;
    const specs = [...GLOBAL_FLAGS, ...ctor.specs];
    this.allSpecs = new Map(specs.map((s) => [s.name, s]));
    try {
      const parsed = parseArgv(this.argv, specs);
      this.positional = parsed.args;
      this.given = parsed.given;
    } catch (err) {
      if (err instanceof FlagParseError) throw usageError(err.message, `see \`${this.usageLine()}\` for the flags.`);
      throw err;
    }
  }

  /** `coord <command> --help`, for hints. */
  private usageLine(): string {
    return `${this.config.bin} ${(this.id ?? '').split(':').join(' ')} --help`.replace(/ +/g, ' ');
  }

  /** A flag's value: command line, then the COORD_ or ETCDCTL_ environment variable (global flags), then default. */
  protected flag<T extends FlagValue>(name: string): T {
    const spec = this.allSpecs.get(name);
    if (!spec) throw new Error(`no such flag: ${name}`);
    try {
      return resolveFlag(spec, this.given) as T;
    } catch (err) {
      if (err instanceof FlagParseError) throw new CliError(err.message, ExitCode.BadArgs);
      throw err;
    }
  }

  protected str(name: string): string {
    return this.flag<string>(name);
  }

  protected bool(name: string): boolean {
    return this.flag<boolean>(name);
  }

  protected int(name: string): bigint {
    return this.flag<bigint>(name);
  }

  /** The resolved global options (validated once, then frozen). */
  protected global(): GlobalOptions {
    if (!this.globals) {
      const endpoints = this.str('endpoints')
        .split(',')
        .map((e) => e.trim())
        .filter((e) => e.length > 0);
      if (endpoints.length === 0) throw new CliError('no endpoints given', ExitCode.BadArgs, { hint: 'pass --endpoints host:port[,host:port...]' });
      this.globals = Object.freeze({
        endpoints: Object.freeze(endpoints),
        dialTimeoutMs: Math.max(1, this.flag<number>('dial-timeout')),
        commandTimeoutMs: Math.max(1, this.flag<number>('command-timeout')),
        writeOut: this.str('write-out'),
        hex: this.bool('hex'),
      });
    }
    return this.globals;
  }

  /** The endpoints of `--endpoints` (or the environment). */
  protected endpointList(): readonly string[] {
    return this.global().endpoints;
  }

  /**
   * The printer for `-w`. etcdctl checks the format when it creates the client, so commands
   * call this (through `client()`) before sending anything.
   */
  protected printer(options: PrinterOptions = {}): Printer {
    const g = this.global();
    const p = newPrinter(g.writeOut, this.out, { hex: g.hex, ...options });
    if (!p) throw badFeature('unsupported output format', `use one of -w ${OUTPUT_FORMATS.join(', ')}.`);
    return p;
  }

  /** TLS credentials from --cacert/--cert/--key, built with the client's own grpc-js. */
  private credentials(): ClientOptions['credentials'] {
    const [cacert, cert, key] = [this.str('cacert'), this.str('cert'), this.str('key')];
    if (!cacert && !cert && !key) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('node:fs') as typeof import('node:fs');
    const read = (file: string, what: string): Buffer | null => {
      if (!file) return null;
      try {
        return fs.readFileSync(file);
      } catch (err) {
        throw new CliError(`open ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, ExitCode.BadArgs, {
          hint: `check the ${what} path.`,
        });
      }
    };
    // Resolve grpc-js from @coord/client so the credentials come from the same instance.
    const grpcPath = require.resolve('@grpc/grpc-js', { paths: [require.resolve('@coord/client')] });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const grpc = require(grpcPath) as typeof import('@grpc/grpc-js');
    return grpc.credentials.createSsl(read(cacert, '--cacert'), read(key, '--key'), read(cert, '--cert'));
  }

  /** Options for a @coord/client Client (the benchmark uses these too). */
  protected clientOptions(endpoints: readonly string[] = this.endpointList()): ClientOptions {
    const g = this.global();
    return {
      endpoints: [...endpoints],
      dialTimeoutMs: g.dialTimeoutMs,
      callTimeoutMs: g.commandTimeoutMs,
      credentials: this.credentials(),
    };
  }

  /**
   * A client for the given endpoints (default `--endpoints`), closed when the command ends.
   * Validates `-w` first, as etcdctl's mustClientFromCmd does.
   */
  protected client(endpoints?: readonly string[]): Client {
    this.printer();
    // Lazy: loading @coord/client loads grpc-js and parses the protos (~100 ms).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Client } = require('@coord/client') as typeof import('@coord/client');
    const c = new Client(this.clientOptions(endpoints));
    this.clients.push(c);
    return c;
  }

  /** All of stdin (for `put KEY` without a value), like Go's ioutil.ReadAll. */
  protected async readStdin(): Promise<Buffer> {
    this.stdinUsed = true;
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Mark stdin as in use so that `finally` releases it. */
  protected useStdin(): NodeJS.ReadStream {
    this.stdinUsed = true;
    return process.stdin;
  }

  /** Print the error as etcdctl does and set the exit code; never rethrows (no oclif banner). */
  override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    const e = toCliError(err, { endpoints: this.globals?.endpoints });
    process.exitCode = e.exitCode;
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: e.code, message: e.message, exitCode: e.exitCode, hint: e.hint } });
      return undefined;
    }
    this.logToStderr('%s', e.stderrText().replace(/\n$/, ''));
    const hint = e.hint ?? (e.exitCode === ExitCode.BadArgs || e.exitCode === ExitCode.BadFeature ? `see \`${this.usageLine()}\`.` : undefined);
    if (hint && (process.stderr.isTTY || process.env.COORD_HINTS === '1')) this.logToStderr('%s', `Try this: ${hint}`);
    if (e.code === 'ERR_INTERNAL' && process.env.DEBUG && err instanceof Error && err.stack) this.logToStderr('%s', err.stack);
    return undefined;
  }

  override async finally(err: Error | undefined): Promise<unknown> {
    for (const c of this.clients.splice(0)) c.close();
    if (this.stdinUsed) process.stdin.destroy();
    return super.finally(err);
  }

  protected override toSuccessJson(result: unknown): unknown {
    return toJsonSafe(result);
  }
}
