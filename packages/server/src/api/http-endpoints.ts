/**
 * etcd's plain-HTTP endpoints on the client URLs, next to gRPC on the same port (etcd
 * multiplexes them with cmux; we look at the first bytes: an HTTP/2 client starts with the
 * "PRI * HTTP/2.0" preface, anything else is HTTP/1.x):
 *   GET /health  → {"health":"true"} (200) once a leader is known and a linearizable read
 *                  succeeds, else {"health":"false"} (503), as etcd 3.4's /health;
 *   GET /version → {"etcdserver":"3.4.0","etcdcluster":"3.4.0"};
 *   GET /metrics → Prometheus text with etcd's metric names for what coord measures.
 */
import * as http from 'node:http';
import type { Member } from '../member/member';
import { SERVER_VERSION } from '../member/member';

/** How long /health waits for its read (etcd: the request timeout; a health check should answer sooner). */
const HEALTH_READ_TIMEOUT_MS = 3000;

export function httpEndpoints(m: Member): http.Server {
  return http.createServer({ noDelay: true }, (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method Not Allowed\n');
    if (url === '/version') return send(res, 200, 'application/json', JSON.stringify({ etcdserver: SERVER_VERSION, etcdcluster: SERVER_VERSION.replace(/\.\d+$/, '.0') }));
    if (url === '/metrics') return send(res, 200, 'text/plain; version=0.0.4', metricsText(m));
    if (url === '/health') {
      void health(m).then((ok) => send(res, ok ? 200 : 503, 'application/json', JSON.stringify({ health: String(ok) })));
      return;
    }
    send(res, 404, 'text/plain', '404 page not found\n');
  });
}

async function health(m: Member): Promise<boolean> {
  if (m.leaderId === 0n) return false;
  const barrier = m.readBarrier();
  if (!barrier) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), HEALTH_READ_TIMEOUT_MS)));
  try {
    return await Promise.race([barrier.then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function metricsText(m: Member): string {
  const s = m.status();
  const c = m.counters;
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, value: bigint | number, labels = ''): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
  };
  metric('etcd_server_has_leader', 'gauge', 'Whether or not a leader exists. 1 is existence, 0 is not.', s.leader !== 0n ? 1 : 0);
  metric('etcd_server_is_leader', 'gauge', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', m.isLeader ? 1 : 0);
  metric('etcd_server_is_learner', 'gauge', 'Whether or not this member is a learner. 1 if is, 0 otherwise.', s.isLearner ? 1 : 0);
  metric('etcd_server_leader_changes_seen_total', 'counter', 'The number of leader changes seen.', c.leaderChanges);
  metric('etcd_server_proposals_committed_total', 'gauge', 'The total number of consensus proposals committed.', s.raftIndex);
  metric('etcd_server_proposals_applied_total', 'gauge', 'The total number of consensus proposals applied.', s.appliedIndex);
  metric('etcd_server_proposals_pending', 'gauge', 'The current number of pending proposals to commit.', m.pendingProposals);
  metric('etcd_mvcc_db_total_size_in_bytes', 'gauge', 'Total size of the underlying database physically allocated in bytes.', s.dbSize);
  metric('etcd_debugging_mvcc_current_revision', 'gauge', 'The current revision of store.', m.rev);
  metric('etcd_network_snapshot_receive_success', 'counter', 'Total number of successful snapshot receives', c.snapshotsReceived);
  metric('etcd_network_snapshot_send_success', 'counter', 'Total number of successful snapshot sends', c.snapshotsSent);
  return lines.join('\n') + '\n';
}
