/**
 * Stand-ins for the images of the public Town OS packages, by package name:
 * what each real image does that its package relies on (the ports it
 * listens on, the programs its entrypoint or command calls), and no more.
 * Redis and PostgreSQL are the real Debian programs; the others are busybox
 * servers answering on the image's ports with a page naming the image.
 */
import type { StandInRecipe } from "./stand-in-images.js";

/** What a busybox stand-in's HTTP ports answer with and its TCP ports print. */
export function standInBanner(image: string): string {
  return `stand-in for ${image}`;
}

/**
 * A busybox server for `image`: HTTP on `http` ports, a banner line on
 * `tcp` ports; a port may be a shell expression (`${PORT:-3003}`), read
 * from the environment the package gives. Stops at once on SIGTERM.
 */
function busyboxServer(
  image: string,
  ports: { http?: string[]; tcp?: string[] },
  extra: Partial<StandInRecipe> = {},
): StandInRecipe {
  const banner = standInBanner(image);
  const servers = [
    ...(ports.http ?? []).map((port) => `httpd -f -p "${port}" -h /stand-in/www &`),
    ...(ports.tcp ?? []).map((port) => `nc -ll -p "${port}" -e /stand-in/banner &`),
  ];
  return {
    description: image,
    entrypoint: ["/stand-in/serve"],
    ...extra,
    files: {
      "/stand-in/www/index.html": `${banner}\n`,
      "/stand-in/banner": `#!/bin/sh\necho '${banner}'\n`,
      "/stand-in/serve": [
        "#!/bin/sh",
        "trap 'exit 0' TERM INT",
        ...servers,
        // `wait` returns on a trapped signal: the container stops without a kill.
        "wait",
        "",
      ].join("\n"),
      ...extra.files,
    },
  };
}

/**
 * The official redis image builds its server with protected mode off (it
 * would refuse every other container); Debian's is on, so the stand-in
 * turns it off unless the command says otherwise (a config file comes first).
 */
const redis: StandInRecipe = {
  description: "redis-server from Debian's redis-tools",
  // Debian's redis-check-rdb is the server when called by another name.
  programs: { "/usr/bin/redis-check-rdb": "/usr/local/libexec/redis-server" },
  files: {
    "/usr/local/bin/redis-server": [
      "#!/bin/sh",
      'case "$1" in',
      '  ""|-*) exec /usr/local/libexec/redis-server --protected-mode no "$@" ;;',
      '  *) config=$1; shift; exec /usr/local/libexec/redis-server "$config" --protected-mode no "$@" ;;',
      "esac",
      "",
    ].join("\n"),
  },
  env: { PATH: "/usr/local/bin:/bin" },
  workdir: "/data",
  cmd: ["redis-server"],
};

const PG = "/usr/lib/postgresql/15";

/**
 * The official postgres image's start, for what the packages set: a
 * cluster made on first start with POSTGRES_USER/PASSWORD/DB and
 * POSTGRES_INITDB_ARGS, password logins from the network with
 * POSTGRES_HOST_AUTH_METHOD, listening on PGPORT. (`--no-sync`: a test's
 * cluster need not survive a power cut, and fsyncs take seconds here.)
 */
const POSTGRES_ENTRYPOINT = `#!/bin/sh
set -e
: "\${PGDATA:=/var/lib/postgresql/data}" "\${POSTGRES_USER:=postgres}"
: "\${POSTGRES_DB:=$POSTGRES_USER}" "\${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { su -s /bin/sh postgres -c "$*"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  chown postgres /tmp/pwfile
  as_postgres initdb -D "'$PGDATA'" --username="'$POSTGRES_USER'" --pwfile=/tmp/pwfile \\
    --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" --no-sync $POSTGRES_INITDB_ARGS >/dev/null
  rm -f /tmp/pwfile
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \\"$POSTGRES_DB\\";" |
      as_postgres postgres --single -D "'$PGDATA'" -j postgres >/dev/null
  fi
  echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
fi
exec su -s /bin/sh postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
`;

const postgres: StandInRecipe = {
  description: "PostgreSQL 15 from Debian",
  programs: Object.fromEntries(
    ["postgres", "initdb", "psql", "pg_isready"].map((p) => [`${PG}/bin/${p}`, `${PG}/bin/${p}`]),
  ),
  // Modules initdb loads, the catalog files it reads, and the time zone it asks for.
  paths: [`${PG}/lib`, "/usr/share/postgresql/15", "/usr/share/zoneinfo/Etc/UTC"],
  files: {
    "/usr/local/bin/docker-entrypoint.sh": POSTGRES_ENTRYPOINT,
    "/etc/passwd":
      "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
    "/etc/group": "root:x:0:\npostgres:x:999:\n",
  },
  env: { PATH: `/usr/local/bin:${PG}/bin:/bin`, TZ: "Etc/UTC", PGDATA: "/var/lib/postgresql/data" },
  entrypoint: ["/usr/local/bin/docker-entrypoint.sh"],
};

/**
 * Ergo's image as the irc package's bootstrap uses it: `ergo genpasswd`
 * (a hash on stdout), `ergo mkcerts` (writes the two files when missing),
 * `ergo run` (IRC on 6667 and 6697), and its default config with the lines
 * the bootstrap rewrites.
 */
function ergo(image: string): StandInRecipe {
  return busyboxServer(
    image,
    { tcp: ["6667", "6697"] },
    {
      workdir: "/ircd",
      entrypoint: ["/ircd-bin/run.sh"],
      files: {
        "/ircd-bin/run.sh": "#!/bin/sh\nexec /ircd-bin/ergo run\n",
        "/ircd-bin/ergo": [
          "#!/bin/sh",
          'case "$1" in',
          "  genpasswd) printf '$2a$04$%s\\n' \"$(sha256sum | cut -c1-53)\" ;;",
          "  mkcerts) for f in fullchain.pem privkey.pem; do [ -f $f ] || echo stand-in > $f; done ;;",
          "  run) exec /stand-in/serve ;;",
          '  *) echo "ergo stand-in: $1?" >&2; exit 2 ;;',
          "esac",
          "",
        ].join("\n"),
        "/ircd-bin/default.yaml": [
          "network:",
          "    name: ErgoTest",
          "server:",
          "    name: ergo.test",
          "languages:",
          "    path: languages",
          "opers:",
          "    admin:",
          '        password: "$2a$04$0123456789abcdef0123456789abcdef0123456789abcdef01234"',
          "",
        ].join("\n"),
      },
    },
  );
}

/** The stand-in for each public package's image (`image` as the daemon names it). */
export function publicStandIn(pkg: string, image: string): StandInRecipe {
  switch (pkg) {
    case "redis":
      return redis;
    case "postgres":
    case "immich-postgres":
      return postgres;
    case "irc":
      return ergo(image);
    case "gitea":
      return busyboxServer(image, { http: ["3000"], tcp: ["22"] });
    case "immich":
      return busyboxServer(image, { http: ["2283"] });
    case "immich-machine-learning":
      return busyboxServer(image, { http: ["${MACHINE_LEARNING_PORT:-3003}"] });
    case "prosody":
      return busyboxServer(image, { http: ["5280"], tcp: ["5222"] });
    case "vaultwarden":
      return busyboxServer(image, { http: ["80"] });
    default:
      throw new Error(`no stand-in for the image of ${pkg} (${image}): add one`);
  }
}
