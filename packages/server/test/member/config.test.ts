/**
 * Goal: `coord server` takes etcd's flags with etcd's names and defaults, and refuses to
 * start on an unknown or invalid flag with a message naming it (DESIGN.md principle 7).
 * Method: parseFlags on argument lists; defaults compared with etcd 3.4's `etcd --help`.
 */
import { ConfigError, parseFlags } from '../../src/member/config';

describe('parseFlags', () => {
  it("uses etcd's defaults", () => {
    const c = parseFlags([]);
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.coord');
    expect(c.listenClientUrls).toEqual(['http://localhost:2379']);
    expect(c.advertiseClientUrls).toEqual(['http://localhost:2379']);
    expect(c.initialAdvertisePeerUrls).toEqual(['http://localhost:2380']);
    expect([...c.initialCluster]).toEqual([['default', ['http://localhost:2380']]]);
    expect(c.initialClusterState).toBe('new');
    expect(c.initialClusterToken).toBe('etcd-cluster');
    expect(c.heartbeatIntervalMs).toBe(100);
    expect(c.electionTimeoutMs).toBe(1000);
    expect(c.snapshotCount).toBe(100000);
    expect(c.maxRequestBytes).toBe(1572864);
    expect(c.maxTxnOps).toBe(128);
    expect(c.quotaBackendBytes).toBe(2 * 1024 * 1024 * 1024);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('accepts --flag value, --flag=value and -flag value, as Go flags do', () => {
    const c = parseFlags(['--name', 'n1', '--data-dir=/tmp/x', '-max-txn-ops', '7', '--initial-cluster', 'n1=http://127.0.0.1:2380']);
    expect(c.name).toBe('n1');
    expect(c.dataDir).toBe('/tmp/x');
    expect(c.maxTxnOps).toBe(7);
  });

  it('derives the data dir and initial cluster from --name', () => {
    const c = parseFlags(['--name', 'infra0', '--initial-advertise-peer-urls', 'http://10.0.0.1:2380']);
    expect(c.dataDir).toBe('infra0.coord');
    expect([...c.initialCluster]).toEqual([['infra0', ['http://10.0.0.1:2380']]]);
  });

  it('reads ETCD_* environment variables; flags win', () => {
    const c = parseFlags(['--name', 'fromflag'], { ETCD_NAME: 'fromenv', ETCD_MAX_TXN_OPS: '9' });
    expect(c.name).toBe('fromflag');
    expect(c.maxTxnOps).toBe(9);
  });

  it.each([
    [['--bogus'], 'flag provided but not defined: -bogus'],
    [['--name'], 'flag needs an argument: -name'],
    [['--max-request-bytes', 'abc'], '-max-request-bytes'],
    [['--max-txn-ops', '0'], '-max-txn-ops'],
    [['--snapshot-count', '-5'], '-snapshot-count'],
    [['--listen-client-urls', 'localhost:2379'], '-listen-client-urls'],
    [['--listen-client-urls', 'ftp://x:1'], 'URL scheme must be http, https, unix or unixs'],
    [['--listen-client-urls', 'http://127.0.0.1'], 'does not have the form "host:port"'],
    [['--initial-cluster-state', 'old'], '-initial-cluster-state'],
    [['--initial-cluster', 'other=http://127.0.0.1:2380'], "couldn't find local name \"default\""],
    [['--initial-cluster', 'garbage'], '-initial-cluster'],
    [['--heartbeat-interval', '300'], 'should be at least as 5 times as --heartbeat-interval'],
    [['--election-timeout', '60000'], 'should be set less than 50 seconds'],
    [['--auto-compaction-mode', 'sometimes'], '-auto-compaction-mode'],
    [['--log-level', 'loud'], '-log-level'],
    [['positional'], 'unexpected argument'],
  ])('refuses %j naming the problem', (argv, text) => {
    expect(() => parseFlags(argv as string[])).toThrow(ConfigError);
    expect(() => parseFlags(argv as string[])).toThrow(text as string);
  });
});
