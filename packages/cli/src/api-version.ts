/** The etcd API version coord speaks: what `etcdctl version` prints as "API version". */
export const API_VERSION = '3.4';
