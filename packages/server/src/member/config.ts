/**
 * The member's configuration: etcd's flag names and defaults, validated once at startup and
 * then frozen. An unknown or invalid flag refuses to start the member, naming the flag.
 */
export interface MemberConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly listenClientUrls: readonly string[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenPeerUrls: readonly string[];
  readonly initialAdvertisePeerUrls: readonly string[];
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly snapshotCount: number;
  readonly quotaBackendBytes: number;
  readonly maxRequestBytes: number;
  readonly maxTxnOps: number;
  readonly autoCompactionMode: 'periodic' | 'revision';
  readonly autoCompactionRetention: string;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'urls' | 'int' | 'bool';
interface FlagSpec {
  readonly kind: Kind;
  readonly def: string;
  readonly help: string;
}

/** etcd's defaults (etcd 3.4 `etcd --help`). */
export const FLAGS: Readonly<Record<string, FlagSpec>> = {
  name: { kind: 'string', def: 'default', help: 'Human-readable name for this member.' },
  'data-dir': { kind: 'string', def: '', help: "Path to the data directory (default '${name}.coord')." },
  'wal-dir': { kind: 'string', def: '', help: 'Path to the dedicated wal directory (not supported yet: must be empty).' },
  'listen-client-urls': { kind: 'urls', def: 'http://localhost:2379', help: 'List of URLs to listen on for client traffic.' },
  'advertise-client-urls': { kind: 'urls', def: 'http://localhost:2379', help: 'List of this member\'s client URLs to advertise to the public.' },
  'listen-peer-urls': { kind: 'urls', def: 'http://localhost:2380', help: 'List of URLs to listen on for peer traffic.' },
  'initial-advertise-peer-urls': { kind: 'urls', def: 'http://localhost:2380', help: "List of this member's peer URLs to advertise to the rest of the cluster." },
  'initial-cluster': { kind: 'string', def: '', help: "Initial cluster configuration for bootstrapping (default '${name}=${initial-advertise-peer-urls}')." },
  'initial-cluster-state': { kind: 'string', def: 'new', help: "Initial cluster state ('new' or 'existing')." },
  'initial-cluster-token': { kind: 'string', def: 'etcd-cluster', help: 'Initial cluster token for the etcd cluster during bootstrap.' },
  'heartbeat-interval': { kind: 'int', def: '100', help: 'Time (in milliseconds) of a heartbeat interval.' },
  'election-timeout': { kind: 'int', def: '1000', help: 'Time (in milliseconds) for an election to timeout.' },
  'snapshot-count': { kind: 'int', def: '100000', help: 'Number of committed transactions to trigger a snapshot to disk.' },
  'quota-backend-bytes': { kind: 'int', def: '0', help: 'Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).' },
  'max-request-bytes': { kind: 'int', def: '1572864', help: 'Maximum client request size in bytes the server will accept.' },
  'max-txn-ops': { kind: 'int', def: '128', help: 'Maximum number of operations permitted in a transaction.' },
  'auto-compaction-mode': { kind: 'string', def: 'periodic', help: "Interpret 'auto-compaction-retention' one of: periodic|revision." },
  'auto-compaction-retention': { kind: 'string', def: '0', help: 'Auto compaction retention (0 disables).' },
  'log-level': { kind: 'string', def: 'info', help: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.' },
  logger: { kind: 'string', def: 'zap', help: "Accepted for etcd compatibility ('zap' or 'capnslog')." },
  'enable-v2': { kind: 'bool', def: 'false', help: 'Accepted for etcd compatibility; the v2 API is not served.' },
};

const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;

/** Parses etcd-style flags: `--flag value`, `--flag=value`, `-flag value`; booleans may stand alone. */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv = {}): MemberConfig {
  const values = new Map<string, string>();
  // etcd reads ETCD_<FLAG> environment variables too; flags win.
  for (const name of Object.keys(FLAGS)) {
    const v = env['ETCD_' + name.toUpperCase().replace(/-/g, '_')];
    if (v !== undefined) values.set(name, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}: flags only`);
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = FLAGS[name];
    if (!spec) throw new ConfigError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else {
      if (i + 1 >= argv.length) throw new ConfigError(`flag needs an argument: -${name}`);
      value = argv[++i];
    }
    values.set(name, value);
  }
  const get = (n: string): string => values.get(n) ?? FLAGS[n].def;
  const int = (n: string, min: number): number => {
    const raw = get(n);
    if (!/^-?\d+$/.test(raw)) throw new ConfigError(`invalid value ${JSON.stringify(raw)} for flag -${n}: not an integer`);
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < min) throw new ConfigError(`invalid value ${JSON.stringify(raw)} for flag -${n}: must be >= ${min}`);
    return v;
  };
  const urls = (n: string): string[] => {
    const list = get(n)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (list.length === 0) throw new ConfigError(`invalid value for flag -${n}: at least one URL is required`);
    for (const u of list) {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new ConfigError(`invalid value ${JSON.stringify(u)} for flag -${n}: not a URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'unix:' && parsed.protocol !== 'unixs:') {
        throw new ConfigError(`invalid value ${JSON.stringify(u)} for flag -${n}: URL scheme must be http, https, unix or unixs`);
      }
      if (parsed.protocol.startsWith('http') && !parsed.port) {
        throw new ConfigError(`invalid value ${JSON.stringify(u)} for flag -${n}: URL address does not have the form "host:port"`);
      }
      if (parsed.protocol === 'https:') throw new ConfigError(`invalid value ${JSON.stringify(u)} for flag -${n}: TLS is not supported yet`);
    }
    return list;
  };

  const name = get('name');
  if (name.length === 0) throw new ConfigError('invalid value for flag -name: must not be empty');
  const initialAdvertisePeerUrls = urls('initial-advertise-peer-urls');
  const clusterSpec = values.get('initial-cluster') ?? `${name}=${initialAdvertisePeerUrls.join(`,${name}=`)}`;
  const initialCluster = parseInitialCluster(clusterSpec);
  if (!initialCluster.has(name)) {
    throw new ConfigError(`couldn't find local name ${JSON.stringify(name)} in the initial cluster configuration (flag -initial-cluster)`);
  }
  const state = get('initial-cluster-state');
  if (state !== 'new' && state !== 'existing') {
    throw new ConfigError(`invalid value ${JSON.stringify(state)} for flag -initial-cluster-state: valid values are "new", "existing"`);
  }
  const heartbeatIntervalMs = int('heartbeat-interval', 1);
  const electionTimeoutMs = int('election-timeout', 1);
  if (electionTimeoutMs < 5 * heartbeatIntervalMs) {
    throw new ConfigError(
      `--election-timeout[${electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatIntervalMs}ms]`,
    );
  }
  if (electionTimeoutMs > 50000) throw new ConfigError(`--election-timeout[${electionTimeoutMs}ms] is too long, and should be set less than 50 seconds`);
  const quota = int('quota-backend-bytes', 0);
  if (quota > MAX_QUOTA_BYTES) throw new ConfigError(`invalid value for flag -quota-backend-bytes: exceeds the maximum of ${MAX_QUOTA_BYTES} bytes`);
  const mode = get('auto-compaction-mode');
  if (mode !== 'periodic' && mode !== 'revision') {
    throw new ConfigError(`invalid value ${JSON.stringify(mode)} for flag -auto-compaction-mode: valid values are "periodic", "revision"`);
  }
  if (get('wal-dir') !== '') throw new ConfigError('flag -wal-dir is not supported yet: the WAL lives in <data-dir>/member/wal');
  const logLevel = get('log-level');
  if (!['debug', 'info', 'warn', 'error', 'panic', 'fatal'].includes(logLevel)) {
    throw new ConfigError(`invalid value ${JSON.stringify(logLevel)} for flag -log-level`);
  }
  const config: MemberConfig = {
    name,
    dataDir: get('data-dir') || `${name}.coord`,
    listenClientUrls: urls('listen-client-urls'),
    advertiseClientUrls: urls('advertise-client-urls'),
    listenPeerUrls: urls('listen-peer-urls'),
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: get('initial-cluster-token'),
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount: int('snapshot-count', 1),
    quotaBackendBytes: quota === 0 ? DEFAULT_QUOTA_BYTES : quota,
    maxRequestBytes: int('max-request-bytes', 1),
    maxTxnOps: int('max-txn-ops', 1),
    autoCompactionMode: mode,
    autoCompactionRetention: get('auto-compaction-retention'),
    logLevel,
  };
  return Object.freeze(config);
}

function parseInitialCluster(spec: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`invalid value ${JSON.stringify(spec)} for flag -initial-cluster: expected name=URL pairs`);
    const n = part.slice(0, eq);
    const u = part.slice(eq + 1);
    try {
      new URL(u);
    } catch {
      throw new ConfigError(`invalid value ${JSON.stringify(u)} for flag -initial-cluster: not a URL`);
    }
    m.set(n, [...(m.get(n) ?? []), u]);
  }
  if (m.size === 0) throw new ConfigError('invalid value for flag -initial-cluster: empty');
  return m;
}

export function usage(): string {
  const lines = ['Usage: coord server [flags]', '', 'Flags (named and defaulted as etcd\'s):'];
  for (const [n, s] of Object.entries(FLAGS)) lines.push(`  --${n}${s.def ? ` (default ${JSON.stringify(s.def)})` : ''}\n      ${s.help}`);
  return lines.join('\n');
}
