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
export { SETUP_CODE_FILE } from "./auth/setup-code.js";
export type { FetchedRepository, RepositoryFetcher } from "./catalog/catalog.js";
export type { Page, PageQuery } from "./api/paging.js";
export type { Problem } from "./api/problem.js";
export type {
  PackageDetail,
  PackageSummary,
  UpgradeOffer,
  VersionDetail,
  VersionSummary,
} from "./catalog/catalog.js";
export type { InstallPreview } from "./catalog/preview.js";
export type { AppInstallPreview, AppProgress, AppView, InstallRequest } from "./apps/apps.js";
export type { FlowState as OAuthFlowState, FlowView as OAuthFlow } from "./apps/oauth.js";
export type { LogEntry, LogEvent, LogPage } from "./apps/logs.js";
export type { ContainerHealth } from "./apps/health.js";
export type { AppHealth } from "./apps/monitor.js";
export type { AuditEntry } from "./store/audit.js";
export type { SettingView } from "./store/settings.js";
export type { NetworkStatus } from "./net/network.js";
export type { SnapshotView, StorageView, UploadResult, VolumeView } from "./volumes/volumes.js";
export type { SystemUsage } from "./system/usage.js";
