/**
 * The Redis backend of @coord/recipes: RedisSession, RedisMutex, RedisElection,
 * RedisServiceRegistry and RedisConfigWatcher over `ioredis`, shaped like the etcd-backed
 * classes (same method, option and event names, same error classes) so callers can switch.
 * Its guarantees are weaker than etcd's; read "Redis backend" in docs/RECIPES.md first.
 *
 *   import { redis } from '@coord/recipes';
 *   const client = new Redis(6379);
 *   const session = await redis.RedisSession.create(client, { ttl: 10 });
 *   const mutex = new redis.RedisMutex(session, 'jobs/nightly');
 *   await mutex.withLock(async ({ fencingToken, signal }) => { ... });
 */
export { RedisSession, DEFAULT_REDIS_SESSION_TTL_SECONDS } from './session';
export type { RedisSessionOptions } from './session';
export { RedisMutex } from './mutex';
export type { RedisLockInfo, RedisLockOptions, RedisMutexState } from './mutex';
export { RedisElection } from './election';
export type { RedisElectionState, RedisLeaderChange, RedisLeaderInfo, RedisLeadership, RedisObserveOptions } from './election';
export { RedisServiceRegistry, RedisRegistration, RedisLivePicker } from './registry';
export type { RedisServiceChange, RedisServiceEntry, RedisServiceList, RedisServiceRegistryOptions } from './registry';
export { RedisConfigWatcher } from './config-watcher';
export type { RedisConfigWatcherOptions } from './config-watcher';
export { RedisConfigStore } from './config-store';
export { RedisKeys, DEFAULT_REDIS_NAMESPACE } from './keys';
export type { QueueKeys, ServiceKeys, ConfigKeys } from './keys';
export { OWNER_GUARD_LUA } from './scripts';
export { Notifier, Inbox, INBOX_MESSAGES_MAX } from './notifier';
export type { InboxItem } from './notifier';
