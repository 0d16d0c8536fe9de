/**
 * The Lua scripts of the Redis backend: every mutation that must be atomic is one script, run
 * with EVALSHA (ioredis `defineCommand` falls back to EVAL when the server lacks it).
 *
 * Portability: the scripts run on Redis 5+ (Lua 5.1) and on ioredis-mock (fengari, Lua 5.3),
 * so they use neither `cjson` nor `redis.error_reply`, read counters back with GET (exact
 * decimal strings, also past 2^53), and format numbers with `%d` (Lua 5.3 prints `1.0`).
 * Missing values are `false` in both (redis.call turns a nil reply into false); HMGET is avoided
 * (the mock gives a userdata `null` for a missing field), and arrays built by appending go
 * through `reply()` (see REPLY_LUA).
 *
 * Every script that changes observable state bumps a version counter and publishes exactly one
 * message per bump on the recipe's channel: that pairing is what lets a subscriber that
 * subscribed before reading detect a lost message as a gap in the versions.
 *
 * The scripts read other sessions' keys (`EXISTS <session prefix><token>`), which are not
 * declared in KEYS: fine on a single primary, not allowed on Redis Cluster.
 */
import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { ConfigKeys, QueueKeys, ServiceKeys } from './keys';

/**
 * Return an array built by appending. Redis (Lua 5.1) returns such a table as is; ioredis-mock
 * (fengari) only converts tables made by a constructor, so there we copy it into one.
 */
const REPLY_LUA = `
local function reply(t)
  if _VERSION == 'Lua 5.1' then return t end
  return {table.unpack(t)}
end
`;

// ---- queue with a holder (Mutex, Election) -------------------------------------------------

/**
 * KEYS: 1 queue, 2 holder, 3 values, 4 fence, 5 seq, 6 version, 7 the caller's session key.
 * ARGV: 1 token, 2 session key prefix, 3 wake channel prefix, 4 events channel ('' = none).
 */
const QUEUE_PRELUDE = `
local Q, H, VALS, FENCE, SEQ, VER, ME = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local token, sp, wp, events = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function int(n) return string.format('%d', n) end
local function bump() redis.call('INCR', VER) return redis.call('GET', VER) end
local function live(t) return redis.call('EXISTS', sp .. t) == 1 end
-- "<version>\\n<token>\\n<fence>\\n<mod>\\n<holder session pttl>\\n<value>" (empty token: no holder)
local function field(f) return redis.call('HGET', H, f) end
local function state()
  local v = redis.call('GET', VER) or '0'
  local t = field('token')
  if not t then return v .. '\\n\\n\\n\\n-2\\n' end
  return v .. '\\n' .. t .. '\\n' .. field('fence') .. '\\n' .. field('mod') .. '\\n' .. int(redis.call('PTTL', sp .. t)) .. '\\n' .. (field('value') or '')
end
local function publish() if events ~= '' then redis.call('PUBLISH', events, state()) end end
-- The first waiter whose session is alive; dead ones are dropped on the way (bounded by the queue).
local function firstLive()
  local n = redis.call('ZCARD', Q)
  for i = 0, n do
    local head = redis.call('ZRANGE', Q, 0, 0)[1]
    if not head or live(head) then return head end
    redis.call('ZREM', Q, head)
    redis.call('HDEL', VALS, head)
  end
  return nil
end
-- Hand the hold to the first live waiter (precondition: no holder): a new fencing token, one
-- version, the new state published, and the waiter woken on its own channel.
local function promote()
  local head = firstLive()
  if not head then return nil end
  redis.call('INCR', FENCE)
  local fence = redis.call('GET', FENCE)
  local v = bump()
  local value = redis.call('HGET', VALS, head) or ''
  redis.call('HSET', H, 'token', head, 'fence', fence, 'mod', v, 'value', value)
  redis.call('ZREM', Q, head)
  redis.call('HDEL', VALS, head)
  publish()
  redis.call('PUBLISH', wp .. head, fence)
  return head
end
local function enqueue(value)
  if not redis.call('ZSCORE', Q, token) then
    redis.call('INCR', SEQ)
    redis.call('ZADD', Q, redis.call('GET', SEQ), token)
  end
  redis.call('HSET', VALS, token, value)
end
`;

/**
 * ARGV 5: 'wait' (join the queue) or 'try' (only if nobody holds or waits), 6: value.
 * Returns {1, fence, mod} held; {0, pttl of the holder's session} queued; {2} busy (try);
 * {-1} the caller's session is gone.
 */
const Q_ACQUIRE = `${QUEUE_PRELUDE}
local mode, value = ARGV[5], ARGV[6]
if redis.call('EXISTS', ME) == 0 then
  redis.call('ZREM', Q, token)
  redis.call('HDEL', VALS, token)
  return {-1}
end
local holder = field('token')
if holder == token then return {1, field('fence'), field('mod')} end
if holder and live(holder) then
  if mode == 'try' then return {2} end
  enqueue(value)
  return {0, redis.call('PTTL', sp .. holder)}
end
-- No live holder (none, or its session expired): the first live waiter gets it, the caller
-- joining the queue first (at its end, unless already queued).
if holder then redis.call('DEL', H) end
enqueue(value)
local new = promote()
if new == token then return {1, field('fence'), field('mod')} end
if mode == 'try' then
  redis.call('ZREM', Q, token)
  redis.call('HDEL', VALS, token)
  return {2}
end
return {0, redis.call('PTTL', sp .. new)}
`;

/**
 * Leave: release the hold if the caller has it (with fence ARGV 5, or any fence when ''), and
 * leave the queue; then hand the hold to the next live waiter if nobody holds it.
 * Returns 1 if the caller held it.
 */
const Q_RELEASE = `${QUEUE_PRELUDE}
local holder = field('token')
local released, changed = 0, false
if holder == token and (ARGV[5] == '' or field('fence') == ARGV[5]) then
  redis.call('DEL', H)
  released, changed = 1, true
elseif holder and not live(holder) then
  redis.call('DEL', H)
  changed = true
end
redis.call('ZREM', Q, token)
redis.call('HDEL', VALS, token)
if redis.call('EXISTS', H) == 0 then
  if not promote() and changed then bump() publish() end
end
return released
`;

/**
 * The holder's state (see \`state()\`). With ARGV 5 = 'sweep', first end a hold whose session
 * is gone (handing it over, or publishing "no holder"): observers do this when the holder's
 * session TTL has run out, since nothing else tells them.
 */
const Q_STATE = `${QUEUE_PRELUDE}
if ARGV[5] == 'sweep' then
  local h = field('token')
  if h and not live(h) then
    redis.call('DEL', H)
    if not promote() then bump() publish() end
  elseif not h then
    promote()
  end
end
return state()
`;

/** Change the holder's value if the caller holds with fence ARGV 5. Returns {1, version} or {0}. */
const Q_PROCLAIM = `${QUEUE_PRELUDE}
if field('token') ~= token or field('fence') ~= ARGV[5] or redis.call('EXISTS', ME) == 0 then return {0} end
local v = bump()
redis.call('HSET', H, 'mod', v, 'value', ARGV[6])
publish()
return {1, v}
`;

/** KEYS 1 holder; ARGV token, fence. 1 while that token holds with that fence. */
const Q_CHECK = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] and redis.call('HGET', KEYS[1], 'fence') == ARGV[2] then return 1 end
return 0
`;

/**
 * The guard of guarded writes. KEYS 1 holder, 2 the holder's session key; ARGV 1 token,
 * 2 fence. The caller's script follows with KEYS and ARGV shifted by two.
 */
export const OWNER_GUARD_LUA = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'fence') ~= ARGV[2]
  or redis.call('EXISTS', KEYS[2]) == 0 then return {0} end
`;

// ---- service registry ------------------------------------------------------------------------

/** KEYS: 1 instances, 2 owners, 3 version. */
const SVC_PRELUDE = `${REPLY_LUA}
local I, O, VER = KEYS[1], KEYS[2], KEYS[3]
local function int(n) return string.format('%d', n) end
local function bump() redis.call('INCR', VER) return redis.call('GET', VER) end
-- Drop instances whose session is gone (one version and one 'removed' message each);
-- returns the smallest remaining session TTL in ms (-1: none expires).
local function sweep(sp, ch)
  local all = redis.call('HGETALL', O)
  local least = -1
  for i = 1, #all, 2 do
    local id, meta = all[i], all[i + 1]
    local ttl = redis.call('PTTL', sp .. string.match(meta, '^(%S+)'))
    if ttl == -2 then
      local json = redis.call('HGET', I, id) or '{}'
      redis.call('HDEL', I, id)
      redis.call('HDEL', O, id)
      redis.call('PUBLISH', ch, bump() .. ' removed ' .. meta .. ' -2\\n' .. json)
    elseif ttl >= 0 and (least < 0 or ttl < least) then
      least = ttl
    end
  end
  return least
end
`;

/**
 * KEYS 4: the registering session's key. ARGV: id, json, token, channel.
 * Message: "<version> added|updated <token> <create> <mod> <session pttl>\n<json>" ('removed'
 * messages have pttl -2). Returns {1, create, mod} or {-1}.
 */
const SVC_REGISTER = `${SVC_PRELUDE}
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1} end
local id, json, token, ch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prev = redis.call('HGET', O, id)
local v = bump()
local create, kind = v, 'added'
if prev then create, kind = string.match(prev, '^%S+ (%S+)'), 'updated' end
local meta = token .. ' ' .. create .. ' ' .. v
redis.call('HSET', I, id, json)
redis.call('HSET', O, id, meta)
redis.call('PUBLISH', ch, v .. ' ' .. kind .. ' ' .. meta .. ' ' .. int(redis.call('PTTL', KEYS[4])) .. '\\n' .. json)
return {1, create, v}
`;

/** ARGV: id, owner token ('' = whoever owns it), channel. Returns 1 if removed. */
const SVC_REMOVE = `${SVC_PRELUDE}
local id, token, ch = ARGV[1], ARGV[2], ARGV[3]
local prev = redis.call('HGET', O, id)
if not prev then return 0 end
if token ~= '' and string.sub(prev, 1, #token + 1) ~= token .. ' ' then return 0 end
local json = redis.call('HGET', I, id) or '{}'
redis.call('HDEL', I, id)
redis.call('HDEL', O, id)
redis.call('PUBLISH', ch, bump() .. ' removed ' .. prev .. ' -2\\n' .. json)
return 1
`;

/** ARGV: session prefix, channel. Returns the least session TTL (ms, decimal; -1 none). */
const SVC_SWEEP = `${SVC_PRELUDE}
return int(sweep(ARGV[1], ARGV[2]))
`;

/** Sweep, then {version, least TTL, id, meta, json, id, meta, json, ...}. */
const SVC_LIST = `${SVC_PRELUDE}
local least = sweep(ARGV[1], ARGV[2])
local out = {redis.call('GET', VER) or '0', int(least)}
local all = redis.call('HGETALL', O)
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('HGET', I, all[i]) or '{}'
end
return reply(out)
`;

/** KEYS 1 owners; ARGV id, token. 1 while the instance is registered by that session. */
const SVC_CHECK = `
local o = redis.call('HGET', KEYS[1], ARGV[1])
if o and string.sub(o, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then return 1 end
return 0
`;

// ---- config ----------------------------------------------------------------------------------

/**
 * KEYS: 1 value, 2 fields, 3 version. ARGV: 1 channel, 2 op, ...
 *   'set' value | 'del' | 'fields' replace('1'/'0') nSet f1 v1 ... fN vN del1 del2 ...
 * Bumps the version and publishes it; returns it.
 */
const CFG_WRITE = `
local op = ARGV[2]
if op == 'set' then
  redis.call('SET', KEYS[1], ARGV[3])
elseif op == 'del' then
  redis.call('DEL', KEYS[1], KEYS[2])
elseif op == 'fields' then
  if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
  local n = tonumber(ARGV[4])
  for i = 0, n - 1 do redis.call('HSET', KEYS[2], ARGV[5 + 2 * i], ARGV[6 + 2 * i]) end
  for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
else
  return ''
end
redis.call('INCR', KEYS[3])
local v = redis.call('GET', KEYS[3])
redis.call('PUBLISH', ARGV[1], v)
return v
`;

/** KEYS: 1 value, 2 fields, 3 version; ARGV 1 'value'|'fields'. {version[, value]} or {version, f1, v1, ...}. */
const CFG_READ = `${REPLY_LUA}
local v = redis.call('GET', KEYS[3]) or '0'
if ARGV[1] == 'value' then
  local x = redis.call('GET', KEYS[1])
  if not x then return {v} end
  return {v, x}
end
local out = {v}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all do out[#out + 1] = all[i] end
return reply(out)
`;

/** Distinct guarded bodies defined as commands per client; more run with EVAL. */
const GUARDED_SCRIPTS_MAX = 256;

/** OWNER_GUARD_LUA, then `body` with KEYS and ARGV shadowed so it sees its own, numbered from 1. */
function guardedLua(body: string): string {
  return `${OWNER_GUARD_LUA}
local __k, __a = {}, {}
for i = 3, #KEYS do __k[#__k + 1] = KEYS[i] end
for i = 3, #ARGV do __a[#__a + 1] = ARGV[i] end
local __body = function(KEYS, ARGV)
${body}
end
return {1, __body(__k, __a)}
`;
}

const DEFINITIONS = {
  coordQAcquire: { numberOfKeys: 7, lua: Q_ACQUIRE },
  coordQRelease: { numberOfKeys: 7, lua: Q_RELEASE },
  coordQState: { numberOfKeys: 7, lua: Q_STATE },
  coordQProclaim: { numberOfKeys: 7, lua: Q_PROCLAIM },
  coordQCheck: { numberOfKeys: 1, lua: Q_CHECK },
  coordSvcRegister: { numberOfKeys: 4, lua: SVC_REGISTER },
  coordSvcRemove: { numberOfKeys: 3, lua: SVC_REMOVE },
  coordSvcSweep: { numberOfKeys: 3, lua: SVC_SWEEP },
  coordSvcList: { numberOfKeys: 3, lua: SVC_LIST },
  coordSvcCheck: { numberOfKeys: 1, lua: SVC_CHECK },
  coordCfgWrite: { numberOfKeys: 3, lua: CFG_WRITE },
  coordCfgRead: { numberOfKeys: 3, lua: CFG_READ },
} as const;

type ScriptName = keyof typeof DEFINITIONS;
type Target = Redis | ChainableCommander;
type Arg = string | number | Buffer;

const defined = new WeakSet<object>();

function ensureDefined(redis: Redis): void {
  if (defined.has(redis)) return;
  for (const [name, def] of Object.entries(DEFINITIONS)) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, def);
  }
  defined.add(redis);
}

function invoke(target: Target, name: string, args: Arg[]): Promise<unknown> {
  const fn = (target as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[name];
  if (typeof fn !== 'function') throw new Error(`redis: script ${name} is not defined on this connection`);
  return fn.apply(target, args);
}

/** Queue-script arguments shared by every call: who is calling, and where the channels are. */
export interface QueueCaller {
  readonly keys: QueueKeys;
  /** The caller's session key ('' for observers without a session). */
  readonly sessionKey: string;
  readonly token: string;
  readonly sessionPrefix: string;
  /** Publish the holder's state on `keys.events` (elections) or not (mutexes). */
  readonly publish: boolean;
}

function queueArgs(c: QueueCaller): Arg[] {
  const k = c.keys;
  return [k.queue, k.holder, k.values, k.fence, k.seq, k.version, c.sessionKey || k.holder, c.token, c.sessionPrefix, k.wake, c.publish ? k.events : ''];
}

/** Typed entry points to the scripts, defined on `redis` on first use. */
export class RedisScripts {
  private constructor(readonly redis: Redis) {
    ensureDefined(redis);
  }

  private static readonly cache = new WeakMap<Redis, RedisScripts>();

  static of(redis: Redis): RedisScripts {
    let s = RedisScripts.cache.get(redis);
    if (!s) {
      s = new RedisScripts(redis);
      RedisScripts.cache.set(redis, s);
    }
    return s;
  }

  qAcquire(c: QueueCaller, mode: 'wait' | 'try', value: string): Promise<unknown[]> {
    return invoke(this.redis, 'coordQAcquire', [...queueArgs(c), mode, value]) as Promise<unknown[]>;
  }

  qRelease(c: QueueCaller, fence: bigint | undefined, target: Target = this.redis): Promise<unknown> {
    return invoke(target, 'coordQRelease', [...queueArgs(c), fence === undefined ? '' : fence.toString()]);
  }

  qState(c: QueueCaller, sweep: boolean): Promise<string> {
    return invoke(this.redis, 'coordQState', [...queueArgs(c), sweep ? 'sweep' : 'read']) as Promise<string>;
  }

  qProclaim(c: QueueCaller, fence: bigint, value: string): Promise<unknown[]> {
    return invoke(this.redis, 'coordQProclaim', [...queueArgs(c), fence.toString(), value]) as Promise<unknown[]>;
  }

  qCheck(target: Target, holderKey: string, token: string, fence: bigint): Promise<unknown> {
    return invoke(target, 'coordQCheck', [holderKey, token, fence.toString()]);
  }

  svcRegister(k: ServiceKeys, sessionKey: string, id: string, json: string, token: string): Promise<unknown[]> {
    return invoke(this.redis, 'coordSvcRegister', [k.instances, k.owners, k.version, sessionKey, id, json, token, k.events]) as Promise<unknown[]>;
  }

  svcRemove(k: ServiceKeys, id: string, token: string, target: Target = this.redis): Promise<unknown> {
    return invoke(target, 'coordSvcRemove', [k.instances, k.owners, k.version, id, token, k.events]);
  }

  svcSweep(k: ServiceKeys, sessionPrefix: string): Promise<unknown> {
    return invoke(this.redis, 'coordSvcSweep', [k.instances, k.owners, k.version, sessionPrefix, k.events]);
  }

  svcList(k: ServiceKeys, sessionPrefix: string): Promise<unknown[]> {
    return invoke(this.redis, 'coordSvcList', [k.instances, k.owners, k.version, sessionPrefix, k.events]) as Promise<unknown[]>;
  }

  svcCheck(target: Target, k: ServiceKeys, id: string, token: string): Promise<unknown> {
    return invoke(target, 'coordSvcCheck', [k.owners, id, token]);
  }

  cfgWrite(k: ConfigKeys, op: Arg[]): Promise<unknown> {
    return invoke(this.redis, 'coordCfgWrite', [k.value, k.fields, k.version, k.changed, ...op]);
  }

  /** The Buffer variant: values come back as bytes (ioredis-mock has no Buffer variants: converted). */
  async cfgRead(k: ConfigKeys, mode: 'value' | 'fields'): Promise<Buffer[]> {
    const args = [k.value, k.fields, k.version, mode];
    if (typeof (this.redis as unknown as Record<string, unknown>).coordCfgReadBuffer === 'function') {
      return (await invoke(this.redis, 'coordCfgReadBuffer', args)) as Buffer[];
    }
    return ((await invoke(this.redis, 'coordCfgRead', args)) as unknown[]).map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8')));
  }

  private readonly guards = new Map<string, string>();

  /**
   * Run the caller's Lua `body` behind OWNER_GUARD_LUA (holder key, session key, token, fence
   * first). Returns {ok: false} when the guard failed, else {ok: true, result}.
   */
  async guarded(holderKey: string, sessionKey: string, token: string, fence: bigint, body: string, keys: readonly string[], args: readonly Arg[]): Promise<{ ok: boolean; result: unknown }> {
    let name = this.guards.get(body);
    if (!name && this.guards.size >= GUARDED_SCRIPTS_MAX) {
      // Bounded: past that many distinct bodies, run the rest with plain EVAL.
      const reply = (await this.redis.eval(guardedLua(body), keys.length + 2, holderKey, sessionKey, ...keys, token, fence.toString(), ...args)) as unknown[];
      return Number(reply[0]) === 1 ? { ok: true, result: reply[1] } : { ok: false, result: undefined };
    }
    if (!name) {
      name = 'coordGuard_' + createHash('sha1').update(body).digest('hex');
      const lua = guardedLua(body);
      if (typeof (this.redis as unknown as Record<string, unknown>)[name] !== 'function') this.redis.defineCommand(name, { lua });
      this.guards.set(body, name);
    }
    // Without numberOfKeys, ioredis takes the key count as the first argument.
    const reply = (await invoke(this.redis, name, [keys.length + 2, holderKey, sessionKey, ...keys, token, fence.toString(), ...args])) as unknown[];
    return Number(reply[0]) === 1 ? { ok: true, result: reply[1] } : { ok: false, result: undefined };
  }
}
