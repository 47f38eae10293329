/**
 * The Town OS API contract (`/api/v1`): every request and response schema as
 * a TypeBox constant (plain JSON Schema at runtime) and the type derived from
 * it. The daemon's routes validate and serialize with these schemas; the
 * client and the dashboard use the types, so both sides read one definition.
 */
export * from "./accounts.js";
export * from "./admin.js";
export * from "./apps.js";
export * from "./backups.js";
export * from "./catalog.js";
export * from "./common.js";
export * from "./logs.js";
export * from "./monitoring.js";
export * from "./monitoring-queries.js";
export * from "./net.js";
export * from "./network-settings.js";
export * from "./oauth.js";
export * from "./pages.js";
export * from "./paging.js";
export * from "./plan.js";
export * from "./repositories.js";
export * from "./system.js";
export * from "./undeclared.js";
export * from "./vm-images.js";
export * from "./volumes.js";
export * from "./state.js";
