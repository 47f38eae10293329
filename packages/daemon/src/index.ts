export {
  DEFAULT_DATA_DIR,
  DEFAULT_LISTEN,
  parseListen,
  startDaemon,
  systemInfo,
  type DaemonConfig,
  type RunningDaemon,
} from "./daemon.js";
export { DEFAULT_REPOSITORY } from "./store/repositories.js";
export { DEFAULT_MONITORING } from "./monitoring/types.js";
export { SETUP_CODE_FILE } from "./auth/setup-code.js";
export type { FetchedRepository, RepositoryFetcher } from "./catalog/catalog.js";
