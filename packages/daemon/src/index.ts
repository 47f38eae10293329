export {
  DEFAULT_DATA_DIR,
  startDaemon,
  systemInfo,
  type DaemonConfig,
  type RunningDaemon,
} from "./daemon.js";
export { DEFAULT_LISTEN, parseListen } from "./listen-address.js";
export { DEFAULT_REPOSITORY } from "./store/repositories.js";
export { DEFAULT_MONITORING } from "./monitoring/types.js";
export { SETUP_CODE_FILE } from "./auth/setup-code.js";
export type { FetchedRepository, RepositoryFetcher } from "./catalog/catalog.js";
// The written forms the CLI reads and shows: one parser, the daemon's.
export { formatKeepPolicy, parseKeepPolicy } from "./backup/keep.js";
export { checkSchedule } from "./backup/schedule.js";
export { MAX_STATE_FILE_BYTES, MAX_STATE_FILES, parseCheckout } from "./state/layout.js";
// `town state encrypt` encrypts answers as the box decrypts them.
export { encryptAnswer } from "./state/age-key.js";
