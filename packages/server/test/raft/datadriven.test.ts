/**
 * Goal: readable, reviewable scripts of whole interactions (etcd-io/raft's datadriven
 * style): each block of testdata/*.txt is a command, `----`, and the expected output
 * (every message delivered, then any requested state). REWRITE=1 rewrites the expected
 * output from the actual — commit such a diff only if you understand what caused it.
 * Method: a TestNet per file, driven by the commands below.
 *
 * Commands: cluster voters=1,2,3 [learners=4] [prevote=false] [checkquorum=false]
 *           campaign ID | propose ID DATA | tick ID N | tick-all N | isolate ID | heal
 *           status ID | log ID | read-index ID CTX | transfer ID TO
 *           conf-change ID add-learner|add-node|remove-node NODE
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Message } from '../../src/raft';
import { TestNet, dec, enc } from './helpers';

const dir = path.join(__dirname, 'testdata');

function fmtMsg(m: Message, dropped: boolean): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  if (m.type === 'app' || m.type === 'vote' || m.type === 'preVote') parts.push(`logTerm=${m.logTerm} index=${m.index}`);
  if (m.type === 'app' || m.type === 'heartbeat') parts.push(`commit=${m.commit}`);
  if (m.type === 'appResp' || m.type === 'readIndexResp') parts.push(`index=${m.index}`);
  if (m.reject) parts.push(`reject hint=${m.rejectHint}/${m.logTerm}`);
  if (m.entries.length > 0) parts.push(`entries=[${m.entries.map((e) => `${e.index}/${e.term}${e.type === 'confChange' ? ' conf' : ` "${dec(e.data)}"`}`).join(', ')}]`);
  if (m.snapshot !== null) parts.push(`snapshot=${m.snapshot.meta.index}/${m.snapshot.meta.term}`);
  return `${parts.join(' ')}${dropped ? ' DROPPED' : ''}`;
}

function run(net: TestNet | null, cmd: string, args: string[]): { net: TestNet | null; out: string } {
  const id = (i: number): bigint => BigInt(args[i]);
  const kv = new Map(args.filter((a) => a.includes('=')).map((a) => a.split('=') as [string, string]));
  if (cmd === 'cluster') {
    const ids = (k: string): bigint[] => (kv.get(k) ?? '').split(',').filter((x) => x !== '').map(BigInt);
    const n = new TestNet(ids('voters'), { preVote: kv.get('prevote') !== 'false', checkQuorum: kv.get('checkquorum') !== 'false' }, ids('learners'));
    return { net: n, out: 'ok' };
  }
  if (net === null) throw new Error('no cluster yet');
  const mark = net.trafficLog.length;
  const lines: string[] = [];
  try {
    switch (cmd) {
      case 'campaign':
        net.campaign(id(0));
        break;
      case 'propose':
        net.propose(id(0), args[1]);
        break;
      case 'tick':
        net.tick(id(0), Number(args[1]));
        break;
      case 'tick-all':
        net.tickAll(Number(args[0]));
        break;
      case 'isolate':
        net.isolate(id(0));
        break;
      case 'heal':
        net.heal();
        break;
      case 'read-index':
        net.get(id(0)).node.readIndex(enc(args[1]));
        net.settle();
        break;
      case 'transfer':
        net.get(id(0)).node.transferLeader(id(1));
        net.settle();
        break;
      case 'conf-change': {
        const type = ({ 'add-learner': 'addLearner', 'add-node': 'addNode', 'remove-node': 'removeNode' } as const)[args[1] as 'add-learner'];
        net.get(id(0)).node.proposeConfChange({ type, nodeId: id(2), context: new Uint8Array(0) });
        net.settle();
        break;
      }
      case 'status':
      case 'log':
        break;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  } catch (e) {
    lines.push(`error: ${(e as Error).message}`);
  }
  for (const m of net.trafficLog.slice(mark)) lines.push(fmtMsg(m, net.dropped.has(m)));
  if (cmd === 'status') {
    const st = net.get(id(0)).node.status();
    lines.push(
      `${st.id}: ${st.softState.role} term=${st.hardState.term} vote=${st.hardState.vote} lead=${st.softState.lead} commit=${st.hardState.commit} applied=${st.applied} last=${st.lastIndex} voters=${st.confState.voters.join(',')} learners=${st.confState.learners.join(',')}`,
    );
    if (st.progress !== null) for (const [pid, pr] of st.progress) lines.push(`  ${pid}: ${pr.state} match=${pr.match} next=${pr.next}${pr.isLearner ? ' learner' : ''}`);
  }
  if (cmd === 'log') for (const e of net.logOf(id(0))) lines.push(`${e.index}/${e.term} ${e.type === 'confChange' ? 'conf' : `"${dec(e.data)}"`}`);
  if (cmd === 'read-index') for (const rs of net.get(id(0)).readStates.splice(0)) lines.push(`read-state ctx=${dec(rs.requestCtx)} index=${rs.index}`);
  return { net, out: lines.length === 0 ? 'ok' : lines.join('\n') };
}

const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.txt')) : [];

describe('datadriven scripts (testdata/*.txt)', () => {
  test.each(files)('%s', (f) => {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    let net: TestNet | null = null;
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (lines[i + 1] !== '----' || line.startsWith('#') || line.trim() === '') {
        out.push(line);
        continue;
      }
      // A command: its expected output runs to the next blank line.
      let j = i + 2;
      const expected: string[] = [];
      for (; j < lines.length && lines[j] !== ''; j++) expected.push(lines[j]);
      const [cmd, ...args] = line.trim().split(/\s+/);
      const r = run(net, cmd, args);
      net = r.net;
      if (process.env.REWRITE !== '1') expect(`${line}\n----\n${r.out}`).toBe(`${line}\n----\n${expected.join('\n')}`);
      out.push(line, '----', ...r.out.split('\n'));
      i = j - 1;
    }
    if (process.env.REWRITE === '1') fs.writeFileSync(path.join(dir, f), out.join('\n'));
  });
});
