import type { ExposureLevel } from "../store/installs.js";

/**
 * The host address a port is published on, per exposure: `internet` adds a
 * router mapping to `lan`. What the controller binds and what the app's view
 * shows as a VM's forwarded ports.
 */
export const HOST_ADDRESS: Readonly<Record<ExposureLevel, string>> = {
  local: "127.0.0.1",
  lan: "0.0.0.0",
  internet: "0.0.0.0",
};
