/**
 * Every string the dashboard shows, in one catalog: translating it is a
 * data change. `{name}` placeholders are filled from the params of `t`.
 */
const en = {
  "app.name": "Town OS",
  "nav.open": "Menu",
  "nav.label": "Main",
  "nav.home": "Home",
  "nav.store": "App store",
  "nav.storage": "Storage",
  "nav.repositories": "Repositories",
  "nav.users": "Users",
  "nav.audit": "Audit",
  "nav.settings": "Settings",
  "nav.network": "Network",
  "nav.skip": "Skip to content",
  "user.menu": "Signed in as {name}",
  "user.admin": "administrator",
  "user.logout": "Log out",

  "common.loading": "Loading…",
  "common.cancel": "Cancel",
  "common.close": "Close",
  "common.back": "Back",
  "common.retry": "Try again",
  "common.save": "Save",
  "common.copy": "Copy",
  "common.copied": "Copied",
  "common.show": "Show",
  "common.hide": "Hide",
  "common.none": "None",
  "common.optional": "optional",
  "common.search": "Search",
  "common.refresh": "Refresh",
  "common.remove": "Remove",
  "common.notFound": "There is no page at {path}.",

  "boot.title": "Town OS is starting",
  "boot.step": "Now: {step}",
  "boot.failed": "Town OS could not start",

  "setup.title": "Welcome to Town OS",
  "setup.intro":
    "This box will run your own apps at home. First, create the administrator account: the one that installs apps and manages the box.",
  "setup.username": "Username",
  "setup.password": "Password",
  "setup.confirm": "Password again",
  "setup.email": "Email (optional)",
  "setup.mismatch": "The two passwords differ.",
  "setup.submit": "Create the administrator",

  "login.title": "Sign in to Town OS",
  "login.username": "Username",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.expired": "Your session ended. Please sign in again.",
  "login.loggedOut": "You are signed out.",

  "tour.title": "Next steps",
  "tour.intro": "Your box is ready. Three things make it pleasant to use:",
  "tour.cert": "Trust the box's certificate, so browsers open its apps without warnings.",
  "tour.certLink": "Download the certificate",
  "tour.dns": "Point your router's DNS at this box, so app names work on every device at home.",
  "tour.dnsLink": "Network details",
  "tour.install": "Install a first app.",
  "tour.installLink": "Open the App store",
  "tour.dismiss": "Got it",

  "home.title": "Home",
  "home.apps": "Apps",
  "home.noApps": "No apps are installed yet.",
  "home.browse": "Browse the App store",
  "home.storage": "Storage: {mode}",
  "home.repoErrors": "Repository problems",
  "home.repoError": "{name}: {error}",
  "home.upgrades": "Upgrades available: {count}",
  "home.upgrade": "Upgrade available: {version}",

  "status.running": "Running",
  "status.stopped": "Stopped",
  "status.failed": "Failed",
  "status.starting": "Starting",
  "status.held": "Paused for an upload",
  "status.disabled": "Disabled",

  "store.title": "App store",
  "store.search": "Search apps",
  "store.featured": "Featured",
  "store.repo": "From {repo}",
  "store.empty": "No apps match.",
  "store.noRepos": "No repositories yet: add one to see apps.",
  "store.installed": "Installed {version}",
  "store.invalid": "Versions with errors: {count}",

  "pkg.version": "Version",
  "pkg.install": "Install…",
  "pkg.installed": "Installed: {version}",
  "pkg.openApp": "Open the app's page",
  "pkg.questions": "Questions asked at install",
  "pkg.noQuestions": "This app asks nothing.",
  "pkg.creates": "What it will create",
  "pkg.image": "Image: {image}",
  "pkg.volumesList": "Volumes",
  "pkg.portsList": "Ports",
  "pkg.dependencies": "Apps it needs",
  "pkg.manifest": "Raw manifest",
  "pkg.portChosen": "chosen at install",
  "exposure.external": "reachable from outside the box",
  "exposure.internal": "inside the app only",
  "exposure.local": "this box only",
  "exposure.lan": "home network",
  "exposure.internet": "internet",
  "type.": "text",
  "type.port": "a port number",
  "type.hostname": "a name",
  "type.secret": "a password",
  "type.bytes": "a size",
  "type.duration": "a duration",
  "type.boolean": "yes or no",
  "type.volume": "a volume",
  "type.archive": "an archive",
  "type.oauth": "an account link",
  "pkg.invalid": "This version has errors and cannot be installed.",
  "pkg.adminOnly": "Only an administrator can install apps.",

  "install.title": "Install {name}",
  "install.stepAnswers": "1. Answers",
  "install.stepPreview": "2. Check",
  "install.stepProgress": "3. Install",
  "install.next": "Next: check",
  "install.confirm": "Install",
  "install.generate": "Generate",
  "install.pickPort": "Pick for me",
  "install.portAuto": "automatic",
  "install.secretAuto": "blank: generated",
  "install.unit": "Unit",
  "install.required": "An answer is required.",
  "install.notPort": "Enter a port number between 1 and 65535, or leave it blank.",
  "install.notNumber": "Enter a number.",
  "install.checkAnswer": "Check this answer: Town OS cannot use it.",
  "install.fixBelow": "Some answers need fixing: see the fields marked in red.",
  "install.volumes": "Volumes",
  "install.volumeNew": "{volume} at {mountpoint}: new, empty",
  "install.volumeReuse": "{volume} at {mountpoint}: your earlier data, kept from {from}",
  "install.noVolumes": "No volumes.",
  "install.ports": "Ports",
  "install.port": "{host} → {container} ({exposure})",
  "install.noPorts": "No ports.",
  "install.disk": "Disk",
  "install.diskQuota": "Size limits add up to {quota}.",
  "install.diskUnbounded": "Volumes without a size limit (they grow as needed): {count}.",
  "install.diskFree": "Free on the disk: {free}.",
  "install.diskNoFit": "There is not enough free space.",
  "install.progress": "Installing…",
  "install.done": "Installed.",
  "install.stillGoing": "Still working in the background; the app's page shows how it goes.",

  "app.version": "Version {version}",
  "app.urls": "Where to open it",
  "app.ports": "Ports",
  "app.port": "Port {host} → {container}",
  "app.portLink": "Open port {host}",
  "app.exposure": "Who can reach port {host}",
  "app.exposure.local": "This box only",
  "app.exposure.lan": "Home network",
  "app.exposure.internet": "Internet",
  "app.notes": "Notes",
  "app.actions": "Actions",
  "app.start": "Start",
  "app.stop": "Stop",
  "app.restart": "Restart",
  "app.enable": "Enable",
  "app.disable": "Disable",
  "app.upgrade": "Upgrade to {version}",
  "app.uninstall": "Uninstall…",
  "app.lastError": "Last error",
  "app.containers": "Containers",
  "app.volumes": "Volumes",
  "app.volume": "{name} at {mountpoint}",
  "app.quota": "limit {quota}",
  "app.progress": "Progress",
  "app.enabledHint": "Starts when the box starts.",
  "app.disabledHint": "Does not start with the box.",

  "uninstall.title": "Uninstall {name}?",
  "uninstall.warning":
    "The app stops and its containers are removed. Choose what happens to its data:",
  "uninstall.keep": "Keep the data (you get it back if you install the app again)",
  "uninstall.delete": "Delete the data",
  "uninstall.deleteWarning": "Deleting the data cannot be undone.",
  "uninstall.confirm": "Uninstall",
  "uninstall.confirmDelete": "Uninstall and delete the data",

  "logs.title": "Logs",
  "logs.search": "Search the logs",
  "logs.follow": "Follow new lines",
  "logs.empty": "No log lines yet.",
  "logs.container": "{container} {state}",

  "repos.title": "Repositories",
  "repos.add": "Add a repository",
  "repos.name": "Name",
  "repos.url": "Git URL",
  "repos.username": "Username (optional)",
  "repos.password": "Password or token (optional)",
  "repos.submit": "Add",
  "repos.packages": "Apps: {count}",
  "repos.commit": "at {commit}",
  "repos.never": "not fetched yet",
  "repos.empty": "No repositories yet.",
  "repos.up": "Move {name} up",
  "repos.down": "Move {name} down",
  "repos.first": "First in the list: its apps win when two repositories offer the same version.",

  "storage.title": "Storage",
  "storage.mode": "Mode: {mode}",
  "storage.volumes": "Volumes",
  "storage.used": "{used} used",
  "storage.usedOf": "{used} of {quota}",
  "storage.usedBy": "used by {app}",
  "storage.kind.package": "app",
  "storage.kind.user": "yours",
  "storage.kind.uninstalled": "kept after uninstall",
  "storage.empty": "No volumes yet.",
  "storage.usage": "Space used by {name}",
  "storage.snapshots": "Snapshots: {count}",
  "storage.archive": "Archive to upload into {name}",
  "storage.upload": "Upload",
  "storage.uploading": "Uploading and unpacking…",
  "storage.uploaded": "Unpacked: {entries} entries, {bytes}.",
  "storage.refused": "Refused {count} entries that would leave the volume: {paths}",
  "storage.download": "Download",
  "storage.snapshot": "Take a snapshot",
  "storage.snapshotting": "Taking a snapshot…",
  "storage.quota": "Size limit",
  "storage.quotaOptional": "Size limit (optional)",
  "storage.quotaPlaceholder": "e.g. 10gb; blank: none",
  "storage.setQuota": "Set limit",
  "storage.settingQuota": "Setting the size limit…",
  "storage.delete": "Delete…",
  "storage.deleting": "Deleting…",
  "storage.deleteConfirm": "Delete the volume {name} and everything in it? This cannot be undone.",
  "storage.create": "Create a volume",
  "storage.name": "Name",
  "storage.createSubmit": "Create",

  "users.title": "Users",
  "users.create": "Add a user",
  "users.username": "Username",
  "users.password": "Password",
  "users.role": "Administrator",
  "users.submit": "Add",
  "users.disable": "Disable",
  "users.enable": "Enable",
  "users.promote": "Make administrator",
  "users.demote": "Make ordinary user",
  "users.disabled": "disabled",

  "audit.title": "Audit log",
  "audit.search": "Search the audit log",
  "audit.empty": "Nothing recorded.",

  "settings.title": "Settings",
  "settings.empty": "No settings.",
  "sessions.title": "Where you are signed in",
  "sessions.current": "this browser",
  "sessions.seen": "last seen {time} from {source}",
  "sessions.revoke": "Sign out there",

  "network.title": "Network",
  "network.ca": "The box's certificate",
  "network.caIntro":
    "Install this certificate on each device (and mark it trusted) so browsers accept the box's HTTPS names.",
  "network.caDownload": "Download ca.crt",
  "network.state": "State",
  "network.details": "Details",
  "network.on": "Running",
  "network.off": "Networking is off on this box: no HTTPS names, DNS or port forwarding.",
  "network.caWindows":
    "Windows: open the file, choose Install Certificate, then Trusted Root Certification Authorities.",
  "network.caMac": "macOS: open the file in Keychain Access, then set it to Always Trust.",
  "network.caIphone":
    "iPhone and iPad: open the file, install the profile in Settings, then turn on full trust in Settings → General → About → Certificate Trust Settings.",
  "network.caAndroid":
    "Android: Settings → Security → Encryption & credentials → Install a certificate → CA certificate.",
  "network.caLinux":
    "Linux: copy it to /usr/local/share/ca-certificates/ and run update-ca-certificates.",
} as const;

export type MessageKey = keyof typeof en;

const catalog: Record<MessageKey, string> = en;

/** A key built from data (a question type, say), checked against the catalog; the raw text if absent. */
export function tOr(key: string, fallback: string): string {
  return Object.hasOwn(catalog, key) ? catalog[key as MessageKey] : fallback;
}

export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  return catalog[key].replace(/\{(\w+)\}/g, (whole, name: string) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

/** 1536 → "1.5 KB" (powers of 1024, like the daemon's units). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(value)} ${BYTE_UNITS[unit] ?? "B"}`;
}

export function formatTime(ms: number): string {
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }).format(
    ms,
  );
}
