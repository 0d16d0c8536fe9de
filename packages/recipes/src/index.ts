/**
 * @coord/recipes: coordination recipes over the etcd v3 API, for coord and any etcd.
 *
 *   const client = new Client({ endpoints: ['127.0.0.1:2379'] });
 *   const session = await Session.create(client, { ttl: 10 });
 *
 *   const mutex = new Mutex(session, 'jobs/nightly');          // same keys as `etcdctl lock`
 *   await mutex.withLock(async ({ fencingToken, signal }) => { ... });
 *
 *   const election = new Election(session, 'scheduler');       // same keys as `etcdctl elect`
 *   await election.campaign('host-a');
 *   for await (const { leader } of Election.observe(client, 'scheduler')) ...
 *
 *   const registry = new ServiceRegistry(client);
 *   await registry.register({ service: 'api', id: 'a1', address: '10.0.0.7', port: 8080 });
 *   for await (const change of registry.watch('api')) ...
 *
 *   const config = new ConfigWatcher(client, { key: 'app/config', parse: AppConfig.parse });
 *
 * One file per concept; see each file's header for the layout of its keys and the etcd
 * behaviour it relies on.
 */
export { AbortError } from '@coord/client';
export * from './errors';
export { Session, DEFAULT_SESSION_TTL_SECONDS } from './session';
export type { SessionOptions, SessionState } from './session';
export { Mutex } from './mutex';
export type { LockInfo, LockOptions, MutexState } from './mutex';
export { Election } from './election';
export type { ElectionState, LeaderChange, LeaderInfo, Leadership } from './election';
export {
  ServiceRegistry,
  Registration,
  LivePicker,
  DEFAULT_SERVICES_PREFIX,
  DEFAULT_REGISTRY_TTL_SECONDS,
  encodeInstance,
  decodeInstance,
} from './registry';
export type { ServiceChange, ServiceEntry, ServiceInstance, ServiceInstanceInput, ServiceList, ServiceRegistryOptions } from './registry';
export { Picker } from './picker';
export type { PickStrategy } from './picker';
export { ConfigWatcher } from './config-watcher';
export type { ConfigSnapshot, ConfigWatcherOptions } from './config-watcher';
export { listThenWatch } from './snapshot-watch';
export type { ListThenWatchOptions, RangeUpdate } from './snapshot-watch';
export { leaseKey, leaseKeySuffix, recipePrefix } from './keys';
export type { WaitOptions } from './wait';
export { Semaphore } from './semaphore';
export type { Permit } from './semaphore';
export { Barrier } from './barrier';
export { DoubleBarrier } from './double-barrier';
export { RWMutex } from './rwmutex';
export type { RWHold, RWMode } from './rwmutex';
export { Queue } from './queue';
export type { QueueItem } from './queue';
export { stm, STM_RETRIES_MAX_DEFAULT } from './stm';
export type { StmIsolation, StmOptions, StmResult, StmTxn } from './stm';
export * as redis from './redis';
