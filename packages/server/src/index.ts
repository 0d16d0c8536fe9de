export { startServer, RunningServer } from './server';
export { runServer } from './main';
export { parseFlags, ConfigError, MemberConfig, usage } from './member/config';
export { Member } from './member/member';
export { MvccStore } from './mvcc/store';
export { ERRORS, EtcdError } from './errors';
