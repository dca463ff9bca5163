#!/usr/bin/env bash
# Build the EMQX stand-in Debian package (TEST EQUIPMENT, not EMQX) with dpkg-deb.
#
#   tests/emqx_standin/build_deb.sh [--version 5.8.9] [--edition opensource|enterprise]
#                                   [--output DIR] [--start-on-install] [--fail-boot]
#
# --fail-boot builds a package whose node never boots (it logs why and exits 1): the upgrade that does
# not come back, for the roles' rollback tests.
# Produces DIR/emqx_<version>_all.deb (package `emqx`), or with --edition enterprise
# DIR/emqx-enterprise_<version>_all.deb (package `emqx-enterprise`, default version 5.10.4).
# Environment: EMQX_STANDIN_VERSION, EMQX_STANDIN_EDITION, EMQX_STANDIN_OUTPUT give the defaults.
# Needs dpkg-deb and openssl on the build machine; the package itself depends on python3 only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${EMQX_STANDIN_VERSION:-}"
EDITION="${EMQX_STANDIN_EDITION:-opensource}"
OUTPUT="${EMQX_STANDIN_OUTPUT:-$HERE/dist}"
START_ON_INSTALL=0
FAIL_BOOT=0

die() { echo "build_deb.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
    --version=*) VERSION="${1#*=}"; shift ;;
    --edition) EDITION="${2:?--edition needs a value}"; shift 2 ;;
    --edition=*) EDITION="${1#*=}"; shift ;;
    --output|-o) OUTPUT="${2:?--output needs a value}"; shift 2 ;;
    --output=*) OUTPUT="${1#*=}"; shift ;;
    --start-on-install) START_ON_INSTALL=1; shift ;;
    --fail-boot) FAIL_BOOT=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

case "$EDITION" in
  opensource|ce) EDITION=opensource; PKG=emqx; : "${VERSION:=5.8.9}" ;;
  enterprise|ee) EDITION=enterprise; PKG=emqx-enterprise; : "${VERSION:=5.10.4}" ;;
  *) die "edition must be opensource or enterprise, not '$EDITION'" ;;
esac
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([.~+-][0-9A-Za-z.~+-]*)?$ ]] || die "bad version '$VERSION'"
if [ "$EDITION" = enterprise ]; then
  major_minor="$(echo "$VERSION" | cut -d. -f1-2)"
  # 5.9.0 is the first enterprise-only release
  if [ "$(printf '%s\n' "$major_minor" 5.9 | sort -V | head -1)" != 5.9 ]; then
    die "emqx-enterprise exists from 5.9.0 on (got $VERSION)"
  fi
fi
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
command -v openssl >/dev/null || die "openssl not found (needed for the bundled test certificates)"

mkdir -p "$OUTPUT"
OUTPUT="$(cd "$OUTPUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/emqx-standin-deb.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"

install -d -m 0755 "$ROOT/DEBIAN" "$ROOT/etc/emqx/certs" "$ROOT/lib/systemd/system" \
  "$ROOT/usr/lib/emqx/bin" "$ROOT/usr/lib/emqx/lib/emqx_standin" "$ROOT/usr/lib/emqx/releases/$VERSION" \
  "$ROOT/usr/lib/emqx/plugins" "$ROOT/usr/share/doc/$PKG" "$ROOT/var/lib/emqx" "$ROOT/var/log/emqx" "$ROOT/var/run/emqx"

# ---- code ----------------------------------------------------------------------------------
for f in "$HERE"/emqx_standin/*.py; do
  install -m 0644 "$f" "$ROOT/usr/lib/emqx/lib/emqx_standin/"
done
echo "$VERSION" > "$ROOT/usr/lib/emqx/lib/emqx_standin/VERSION"
echo "$EDITION" > "$ROOT/usr/lib/emqx/lib/emqx_standin/EDITION"
chmod 0644 "$ROOT/usr/lib/emqx/lib/emqx_standin/VERSION" "$ROOT/usr/lib/emqx/lib/emqx_standin/EDITION"
if [ "$FAIL_BOOT" = 1 ]; then
  echo "built with --fail-boot" > "$ROOT/usr/lib/emqx/lib/emqx_standin/FAIL_BOOT"
  chmod 0644 "$ROOT/usr/lib/emqx/lib/emqx_standin/FAIL_BOOT"
fi
echo "14.2.5.2 $VERSION" > "$ROOT/usr/lib/emqx/releases/start_erl.data"
printf 'REL_VSN="%s"\nEMQX_DESCRIPTION="EMQX"\n' "$VERSION" > "$ROOT/usr/lib/emqx/releases/emqx_vars"

cat > "$ROOT/usr/lib/emqx/bin/emqx" <<'EOF'
#!/usr/bin/env bash
# bin/emqx of the EMQX 5.8 stand-in (test equipment). Like check_user in EMQX's bin/emqx (v5.8.9),
# root re-runs it as the emqx user through a login shell: each argument is put inside double
# quotes with nothing escaped, so that shell expands $, backquotes and \ in them and a " ends the
# quoting; EMQX_* variables of the caller are not kept. Run as emqx, arguments pass unchanged.
set -euo pipefail
RUNNER_ROOT_DIR=/usr/lib/emqx
RUNNER_USER=emqx
RUNNER_SCRIPT="$RUNNER_ROOT_DIR/bin/emqx"
DEBUG="${DEBUG:-0}"
WHOAMI="$(id -un)"
if [ "$RUNNER_USER" ] && [ "x$WHOAMI" != "x$RUNNER_USER" ]; then
    if [ "x$WHOAMI" != "xroot" ]; then
        echo "You need to be root or use sudo to run this command"
        exit 1
    fi
    CMD="DEBUG=$DEBUG \"$RUNNER_SCRIPT\" "
    for ARG in "$@"; do
        CMD="${CMD} \"$ARG\""
    done
    # This drops privileges into the runner user, in a new login shell
    exec su - "$RUNNER_USER" -c "$CMD"
fi
export RUNNER_ROOT_DIR
export RUNNER_ETC_DIR=/etc/emqx
export EMQX_ETC_DIR=/etc/emqx
export EMQX_LOG_DIR=/var/log/emqx
export RUNNER_LOG_DIR=/var/log/emqx
export RUNNER_DATA_DIR=/var/lib/emqx
export PYTHONPATH="$RUNNER_ROOT_DIR/lib"
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$RUNNER_LOG_DIR" 2>/dev/null || true
cd "$RUNNER_ROOT_DIR"
exec python3 -m emqx_standin "$@"
EOF
cat > "$ROOT/usr/lib/emqx/bin/emqx_ctl" <<'EOF'
#!/usr/bin/env bash
# bin/emqx_ctl of the EMQX 5.8 stand-in: the same as `emqx ctl ...`
exec "$(dirname "$(readlink -f "$0")")/emqx" ctl "$@"
EOF
chmod 0755 "$ROOT/usr/lib/emqx/bin/emqx" "$ROOT/usr/lib/emqx/bin/emqx_ctl"
# /usr/bin/emqx and /usr/bin/emqx_ctl are not in the package: postinst links them, postrm removes
# them (deploy/packages/deb/debian/rules ships no /usr/bin)

# ---- configuration ---------------------------------------------------------------------------
cat > "$ROOT/etc/emqx/emqx.conf" <<'EOF'
## NOTE:
## The EMQX configuration is prioritized (overlayed) in the following order:
## `data/configs/cluster.hocon < etc/emqx.conf < environment variables`.
##
## Config changes made from EMQX dashboard UI, management HTTP API, or CLI
## are stored in "data/configs/cluster.hocon".
## To avoid confusion, please do not store the same configs in both files.
##
## See https://docs.emqx.com/en/emqx/latest/configuration/configuration.html for more details.
## Configuration full example can be found in etc/examples

node {
  name = "emqx@127.0.0.1"
  cookie = "emqxsecretcookie"
  data_dir = "/var/lib/emqx"
}

cluster {
  name = emqxcl
  discovery_strategy = manual
}

dashboard {
    listeners {
        http.bind = 18083
        # https.bind = 18084
        https {
            ssl_options {
                certfile = "${EMQX_ETC_DIR}/certs/cert.pem"
                keyfile = "${EMQX_ETC_DIR}/certs/key.pem"
            }
        }
    }
}
EOF
cat > "$ROOT/etc/emqx/base.hocon" <<'EOF'
## Base configuration, lowest priority: data/configs/cluster.hocon, etc/emqx.conf and
## environment variables override what is set here.
EOF
cat > "$ROOT/etc/emqx/vm.args" <<'EOF'
## Erlang VM arguments. The node name and cookie are set in emqx.conf (node.name, node.cookie).
## (EMQX stand-in: kept for path compatibility; the stand-in does not run an Erlang VM.)
-mode embedded
+P 2097152
+Q 1048576
+sbwt none
+sbwtdcpu none
+sbwtdio none
+spp true
EOF
cat > "$ROOT/etc/emqx/acl.conf" <<'EOF'
%%--------------------------------------------------------------------
%% -type(ipaddr() :: {ipaddr, string()}).
%% -type(who() :: all | binary() | {user, binary()} | {client, binary()} | {ipaddr, string()}).
%% -type(access() :: subscribe | publish | pubsub).
%% -type(topic() :: binary() | {eq, binary()}).
%% -type(permission() :: allow | deny).
%% -type(rule() :: {permission(), who(), access(), topics()} | {permission(), all}).
%%--------------------------------------------------------------------

{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.

{allow, {ipaddr, "127.0.0.1"}, all, ["$SYS/#", "#"]}.

{deny, all, subscribe, ["$SYS/#", {eq, "#"}, {eq, "+/#"}]}.

{allow, all}.
EOF
# apps/emqx/etc/ssl_dist.conf at v5.8.9, rendered as rebar.config.erl's etc overlay templates it for a
# package ({{ platform_etc_dir }} = /etc/emqx): verify_none on both sides; bin/emqx passes it as
# -ssl_dist_optfile when cluster.proto_dist is inet_tls or inet6_tls
sed 's#{{ platform_etc_dir }}#/etc/emqx#g' "$HERE/etc/ssl_dist.conf" > "$ROOT/etc/emqx/ssl_dist.conf"
# apps/emqx_auth/etc/auth-built-in-db-bootstrap.csv: the default bootstrap_file of the built-in
# database authenticator (a header only)
printf 'user_id,password,is_superuser\n' > "$ROOT/etc/emqx/auth-built-in-db-bootstrap.csv"

# bundled test certificates (EMQX ships its own well-known test certificates too)
CERTS="$ROOT/etc/emqx/certs"
(
  cd "$WORK"
  cat > ext.cnf <<'EOF'
[server]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, DNS:Server, IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/C=SE/ST=Stockholm/L=Stockholm/O=EMQX/CN=RootCA" \
    -keyout ca.key -out "$CERTS/cacert.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/C=SE/ST=Stockholm/L=Stockholm/O=EMQX/CN=Server" \
    -keyout "$CERTS/key.pem" -out server.csr >/dev/null 2>&1
  openssl x509 -req -in server.csr -CA "$CERTS/cacert.pem" -CAkey ca.key -CAserial ca.srl -CAcreateserial -days 3650 \
    -extfile ext.cnf -extensions server -out "$CERTS/cert.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/C=SE/ST=Stockholm/L=Stockholm/O=EMQX/CN=Client" \
    -keyout "$CERTS/client-key.pem" -out client.csr >/dev/null 2>&1
  openssl x509 -req -in client.csr -CA "$CERTS/cacert.pem" -CAkey ca.key -CAserial ca.srl -CAcreateserial -days 3650 \
    -extfile ext.cnf -extensions client -out "$CERTS/client-cert.pem" >/dev/null 2>&1
) || die "openssl failed to make the bundled certificates"
chmod 0644 "$ROOT"/etc/emqx/*.conf "$ROOT"/etc/emqx/*.csv "$ROOT"/etc/emqx/*.hocon "$ROOT"/etc/emqx/vm.args "$CERTS"/*

# ---- systemd -------------------------------------------------------------------------------
cat > "$ROOT/lib/systemd/system/emqx.service" <<'EOF'
[Unit]
Description=emqx daemon
After=network.target

[Service]
User=emqx
Group=emqx

# The ExecStart= is foreground, so 'simple' here
Type=simple
Environment=HOME=/var/lib/emqx

# log to file by default (if no log handler config)
Environment=EMQX_DEFAULT_LOG_HANDLER=file

# Start 'foreground' but not 'start' (daemon) mode.
# Because systemd monitor/restarts 'simple' services
ExecStart=/bin/bash /usr/bin/emqx foreground

# Give EMQX enough file descriptors
LimitNOFILE=1048576

# ExecStop is commented out so systemd will send a SIGTERM when 'systemctl stop'.
# SIGTERM is handled by EMQX and it then performs a graceful shutdown
# emqx stop will ping node, always return 0 to make sure next command will be executed
ExecStop=/bin/bash -c '/usr/bin/emqx stop; exit 0'
# If the process is still running, force kill it
ExecStop=/bin/bash -c 'if [ ps -p $MAINPID >/dev/null 2>&1 ]; then kill -15 $MAINPID; fi'

# Wait long enough before force kill for graceful shutdown
TimeoutStopSec=120s

Restart=on-failure

# Do not restart immediately so the peer nodes in the cluster have
# enough time to handle the 'DOWN' events of this node
RestartSec=120s

[Install]
WantedBy=multi-user.target
EOF
chmod 0644 "$ROOT/lib/systemd/system/emqx.service"

cat > "$ROOT/usr/share/doc/$PKG/README.standin" <<EOF
This is NOT EMQX. It is an offline stand-in for the EMQX $VERSION Debian package, written as
test equipment for the iothub.emq Ansible collection (tests/emqx_standin in its repository).
It installs the same paths, user, unit and commands, and behaves like EMQX on what the
collection's roles and tests use. Python 3 standard library only.
EOF
chmod 0644 "$ROOT/usr/share/doc/$PKG/README.standin"

# ---- maintainer scripts --------------------------------------------------------------------
# As deploy/packages/deb/debian/ at v5.8.9: postinst and postrm, no prerm. postinst runs on every
# install and upgrade and never starts or restarts the service (--start-on-install adds a start,
# which the real package does not do).
if [ "$START_ON_INSTALL" = 1 ]; then
  START_LINE='    systemctl start emqx || true'
else
  START_LINE=''
fi
cat > "$ROOT/DEBIAN/postinst" <<EOF
#!/bin/sh
# postinst script for $PKG (EMQX stand-in; follows EMQX's deploy/packages/deb/debian/postinst)
set -e

# create group
if ! getent group emqx >/dev/null; then
    if command -v addgroup >/dev/null 2>&1; then
        addgroup --system emqx
    else
        groupadd --system emqx
    fi
fi

# create user
if ! getent passwd emqx >/dev/null; then
    if command -v adduser >/dev/null 2>&1; then
        adduser --ingroup emqx \\
                --home /var/lib/emqx \\
                --disabled-password \\
                --system --shell /bin/bash --no-create-home \\
                --gecos "emqx user" emqx
    else
        useradd --system --gid emqx --home-dir /var/lib/emqx --no-create-home \\
                --shell /bin/bash --comment "emqx user" emqx
    fi
fi

for i in lib run log; do
    chown -R emqx:emqx /var/\$i/emqx
done

chown -R emqx:emqx /usr/lib/emqx
chown -R emqx:emqx /etc/emqx

chmod 0755 /var/run/emqx /etc/emqx
chmod 0644 /etc/emqx/*
chmod -R +X /etc/emqx
chmod -R 0755 /usr/lib/emqx/bin
[ -f /usr/bin/emqx ] && rm /usr/bin/emqx
[ -f /usr/bin/emqx_ctl ] && rm /usr/bin/emqx_ctl
ln -s /usr/lib/emqx/bin/emqx /usr/bin/emqx
ln -s /usr/lib/emqx/bin/emqx_ctl /usr/bin/emqx_ctl

if systemctl status --no-pager; then
    systemctl enable emqx;
$START_LINE
else
    echo "systemd is not in use, skip enable emqx"
fi

case "\$1" in
    configure)
    ;;

    abort-upgrade|abort-remove|abort-deconfigure)
    ;;

    *)
        echo "postinst called with unknown argument \\\`\$1'" >&2
        exit 1
    ;;
esac

exit 0
EOF
cat > "$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# postrm script for the EMQX stand-in (follows EMQX's deploy/packages/deb/debian/postrm)
set -e

case "$1" in
    purge)
        # force kill all processes owned by emqx, if any
        pkill -9 -u emqx || true
        rm -f /etc/default/emqx

        if [ -d /var/lib/emqx ]; then
                rm -r /var/lib/emqx
        fi
        if [ -d /var/log/emqx ]; then
                rm -r /var/log/emqx
        fi
        if [ -d /var/run/emqx ]; then
                rm -r /var/run/emqx
        fi
        if [ -d /etc/emqx ]; then
                rm -r /etc/emqx
        fi
        if [ -e /etc/init.d/emqx ]; then
                rm  /etc/init.d/emqx
        fi
        # Remove User & Group
        if getent passwd emqx >/dev/null; then
                deluser --quiet --system emqx
        fi
        if getent group emqx >/dev/null; then
                delgroup --quiet --system --only-if-empty emqx || true
        fi
        if [ -f /usr/bin/emqx ]; then
                rm /usr/bin/emqx
        fi
        if [ -f /usr/bin/emqx_ctl ]; then
                rm /usr/bin/emqx_ctl
        fi
        if [ -d /usr/lib/emqx ]; then
                rm -r /usr/lib/emqx
        fi

        if systemctl status --no-pager; then
          systemctl disable emqx;
          rm -f /etc/systemd/emqx.service
        fi
    ;;

    remove)
        rm /usr/bin/emqx
        rm /usr/bin/emqx_ctl
    ;;

    upgrade|failed-upgrade|abort-install|abort-upgrade|disappear)
    ;;

    *)
        echo "postrm called with unknown argument \`$1\`" >&2
        exit 1
    ;;
esac

exit 0
EOF
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"

(cd "$ROOT" && find etc -type f | sort | sed 's#^#/#') > "$ROOT/DEBIAN/conffiles"

SIZE_KB="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
if [ "$EDITION" = enterprise ]; then
  CONFLICTS="Conflicts: emqx
Replaces: emqx
"
  DESC_EDITION="Enterprise"
else
  CONFLICTS="Conflicts: emqx-enterprise
"
  DESC_EDITION="Open Source"
fi
cat > "$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: all
Maintainer: iothub.emq test equipment <noreply@invalid>
Installed-Size: $SIZE_KB
Depends: python3 (>= 3.11), passwd
${CONFLICTS}Section: net
Priority: optional
Homepage: https://www.emqx.com
Description: EMQX $VERSION ($DESC_EDITION) offline stand-in - test equipment, not EMQX
 Stand-in for the EMQX MQTT broker package, used only to test the iothub.emq
 Ansible collection where real EMQX cannot be downloaded. Same paths, user,
 systemd unit and command line as the real package.
EOF

DEB="$OUTPUT/${PKG}_${VERSION}_all.deb"
dpkg-deb --build --root-owner-group "$ROOT" "$DEB" >/dev/null
echo "$DEB"
