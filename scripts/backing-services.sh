#!/usr/bin/env bash
# Starts, stops and reports the cloud's backing servers (RabbitMQ, PostgreSQL,
# MariaDB) on loopback, with all their data, logs and sockets under one
# directory, for the tests and for a multi-host demo. No systemd needed: each
# server is started directly (as root; each runs as its Debian system user).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

ALL=(rabbitmq postgresql mariadb)
DIR=${NOVALET_BACKING_DIR:-$REPO/.state/backing}
RABBIT_PORT=${NOVALET_RABBIT_PORT:-5672}
PG_PORT=${NOVALET_PG_PORT:-5433}
MYSQL_PORT=${NOVALET_MYSQL_PORT:-3307}
RABBIT_NODE=rabbit@localhost
# Seconds to wait for a server to answer after starting it.
WAIT=${NOVALET_BACKING_TIMEOUT:-90}

usage() {
  cat <<EOF
Usage: $(basename "$0") [--dir DIR] COMMAND [SERVER ...]

Runs Novalet's backing servers on 127.0.0.1, each with a user and password
"novalet" and a database (vhost) "novalet"; their data lives under DIR.

Commands:
  start [SERVER ...]   start the servers (default: all) unless running; install
                       missing Debian packages first; write DIR/urls.env
  stop [SERVER ...]    stop the servers (default: all), keeping their data
  restart [SERVER ...] stop, then start (RabbitMQ keeps durable queues and
                       persistent messages); prints how long it took
  status               say which servers run, with their URLs
  vhost add|delete NAME
                       add (with full rights for novalet) or delete a RabbitMQ
                       vhost: each test deployment gets a bus of its own
  host-user add HOST PASSWORD VHOST [USER] | host-user delete HOST [USER]
                       add (with rights on VHOST) or delete the RabbitMQ user
                       compute-HOST (or USER, named in [conductor] host_users),
                       compute host HOST's own bus identity
                       (docs/multi-host.md: hosts authorised by the conductor)

Servers: ${ALL[*]}

Options and environment:
  --dir DIR            data directory (env NOVALET_BACKING_DIR;
                       default \$REPO/.state/backing)
  NOVALET_RABBIT_PORT  AMQP port (5672)
  NOVALET_PG_PORT      PostgreSQL port (5433)
  NOVALET_MYSQL_PORT   MariaDB port (3307)

DIR/urls.env sets NOVALET_TEST_TRANSPORT_URL, NOVALET_TEST_PG_URL and
NOVALET_TEST_MYSQL_URL; source it to point the tests at these servers.
EOF
}

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as a server's system user.
as_user() { local user=$1; shift; runuser -u "$user" -- "$@"; }

# Makes a directory owned by a server's system user.
own_dir() { mkdir -p "$2"; chown "$1:" "$2"; }

# Reports a failed start: what failed, the end of its log, and where the log is.
fail_start() {
  local name=$1 log=$2
  printf 'error: %s did not start.\n' "$name" >&2
  if [ -f "$log" ]; then
    printf -- '--- last lines of %s ---\n' "$log" >&2
    tail -n 20 "$log" >&2
  fi
  die "$name failed to start; its log is $log"
}

# Waits until "$@" succeeds (true), or WAIT seconds pass or the command in
# ALIVE (a server's liveness check, default none) fails (false).
wait_until() {
  local deadline=$((SECONDS + WAIT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    [ -z "${ALIVE:-}" ] || $ALIVE || return 1
    sleep 0.5
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_missing() {
  local pkgs=() missing=() pkg
  for name in "$@"; do
    case $name in
      rabbitmq) pkgs+=(rabbitmq-server) ;;
      postgresql) pkgs+=(postgresql) ;;
      mariadb) pkgs+=(mariadb-server mariadb-client) ;;
    esac
  done
  for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  step "Installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Where an init system runs, Debian's packages start servers of their own on the
  # default ports: 5432 and 3306 don't meet ours, but a broker on 5672 does (stop
  # it, or set NOVALET_RABBIT_PORT).
}

# --- RabbitMQ ------------------------------------------------------------------

rabbit_dir() { echo "$DIR/rabbitmq"; }
rabbit_url() { echo "rabbit://novalet:novalet@127.0.0.1:$RABBIT_PORT/novalet"; }
rabbit_log() { echo "$(rabbit_dir)/log/startup.log"; }

# Runs a RabbitMQ program as the rabbitmq user in the node's whole environment:
# its own env file (so /etc/rabbitmq is not read) and HOME (so the Erlang cookie
# is ours, not /var/lib/rabbitmq's).
rabbit_run() {
  local d; d=$(rabbit_dir)
  as_user rabbitmq env HOME="$d" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="$RABBIT_NODE" ERL_EPMD_ADDRESS=127.0.0.1 "/usr/lib/rabbitmq/bin/$1" "${@:2}"
}

rabbit_ctl() { rabbit_run rabbitmqctl -n "$RABBIT_NODE" "$@"; }

rabbit_running() { pid_alive "$(rabbit_dir)/rabbit.pid" && rabbit_ctl -q ping >/dev/null 2>&1; }

# False once the node crashed, or wrote its pid file and exited (true while it boots).
rabbit_not_dead() {
  local d; d=$(rabbit_dir)
  [ ! -f "$d/erl_crash.dump" ] && { [ ! -f "$d/rabbit.pid" ] || pid_alive "$d/rabbit.pid"; }
}

rabbit_failed() {
  local d; d=$(rabbit_dir)
  [ ! -f "$d/erl_crash.dump" ] || grep -m1 '^Slogan' "$d/erl_crash.dump" >&2 || true
  fail_start RabbitMQ "$d/log/$RABBIT_NODE.log"
}

rabbit_configure() {
  local d; d=$(rabbit_dir)
  own_dir rabbitmq "$d"; own_dir rabbitmq "$d/mnesia"; own_dir rabbitmq "$d/log"
  cat >"$d/rabbitmq-env.conf" <<EOF
NODENAME=$RABBIT_NODE
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$RABBIT_PORT
DIST_PORT=$((RABBIT_PORT + 20000))
MNESIA_BASE=$d/mnesia
LOG_BASE=$d/log
CONFIG_FILE=$d/rabbitmq.conf
ENABLED_PLUGINS_FILE=$d/enabled_plugins
PID_FILE=$d/rabbit.pid
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$RABBIT_PORT
loopback_users = none
log.file.level = info
EOF
  echo '[].' >"$d/enabled_plugins"
  chown rabbitmq: "$d"/rabbitmq-env.conf "$d"/rabbitmq.conf "$d"/enabled_plugins
}

rabbit_start() {
  if rabbit_running; then echo "    RabbitMQ is already running ($(rabbit_url))"; return; fi
  step "Starting RabbitMQ on 127.0.0.1:$RABBIT_PORT (node $RABBIT_NODE)"
  rabbit_configure
  local d; d=$(rabbit_dir)
  rm -f "$d/rabbit.pid" "$d/erl_crash.dump"
  (cd "$d" && rabbit_run rabbitmq-server -detached) >>"$(rabbit_log)" 2>&1 \
    || fail_start RabbitMQ "$(rabbit_log)"
  ALIVE=rabbit_not_dead wait_until rabbit_ctl await_startup --timeout 5 || rabbit_failed
  rabbit_provision
}

rabbit_provision() {
  rabbit_ctl -q list_users | grep -q '^novalet\b' || rabbit_ctl -q add_user novalet novalet >/dev/null
  rabbit_ctl -q list_vhosts | grep -qx novalet || rabbit_ctl -q add_vhost novalet >/dev/null
  rabbit_ctl -q set_permissions -p novalet novalet '.*' '.*' '.*' >/dev/null
}

rabbit_stop() {
  if ! pid_alive "$(rabbit_dir)/rabbit.pid"; then echo "    RabbitMQ is not running"; return; fi
  step "Stopping RabbitMQ"
  # With the pid file, stop returns once the node's OS process has exited.
  rabbit_ctl -q stop "$(rabbit_dir)/rabbit.pid" >/dev/null
}

# --- PostgreSQL ----------------------------------------------------------------

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pg_dir() { echo "$DIR/postgresql"; }
pg_url() { echo "postgresql://novalet:novalet@127.0.0.1:$PG_PORT/novalet"; }
pg_log() { echo "$(pg_dir)/log/postgresql.log"; }
pg_ctl() { as_user postgres "$(pg_bin)/pg_ctl" -D "$(pg_dir)/data" "$@"; }
pg_running() { [ -f "$(pg_dir)/data/PG_VERSION" ] && pg_ctl status >/dev/null 2>&1; }
pg_sql() { as_user postgres "$(pg_bin)/psql" -h "$(pg_dir)/run" -p "$PG_PORT" -U postgres -qAtX "$@"; }

pg_init() {
  local d; d=$(pg_dir)
  own_dir postgres "$d"; own_dir postgres "$d/run"; own_dir postgres "$d/log"
  [ -f "$d/data/PG_VERSION" ] && return
  # C.UTF-8: byte order sorting, as SQLite sorts; password auth over TCP.
  as_user postgres "$(pg_bin)/initdb" -D "$d/data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >>"$d/log/initdb.log" 2>&1 \
    || fail_start PostgreSQL "$d/log/initdb.log"
}

pg_start() {
  if pg_running; then echo "    PostgreSQL is already running ($(pg_url))"; return; fi
  step "Starting PostgreSQL on 127.0.0.1:$PG_PORT"
  [ -n "$(pg_bin)" ] || die "PostgreSQL's programs are missing (/usr/lib/postgresql/*/bin)"
  pg_init
  # synchronous_commit=off: a crash may lose the last commits (never corrupts);
  # right for test and demo servers, and much faster.
  pg_ctl start -w -t "$WAIT" -l "$(pg_log)" -o "-c listen_addresses=127.0.0.1 -p $PG_PORT \
-c unix_socket_directories=$(pg_dir)/run -c max_connections=300 -c synchronous_commit=off" \
    >/dev/null || fail_start PostgreSQL "$(pg_log)"
  pg_provision
}

pg_provision() {
  pg_sql -c "SELECT 1 FROM pg_roles WHERE rolname = 'novalet'" | grep -q 1 \
    || pg_sql -c "CREATE ROLE novalet LOGIN CREATEDB PASSWORD 'novalet'"
  pg_sql -c "SELECT 1 FROM pg_database WHERE datname = 'novalet'" | grep -q 1 \
    || pg_sql -c "CREATE DATABASE novalet OWNER novalet"
  # Tests drop their databases WITH (FORCE), which may end an autovacuum worker.
  pg_sql -c "GRANT pg_signal_backend TO novalet" 2>/dev/null
}

pg_stop() {
  if ! pg_running; then echo "    PostgreSQL is not running"; return; fi
  step "Stopping PostgreSQL"
  pg_ctl stop -w -m fast >/dev/null
}

# --- MariaDB -------------------------------------------------------------------

my_dir() { echo "$DIR/mariadb"; }
my_url() { echo "mysql://novalet:novalet@127.0.0.1:$MYSQL_PORT/novalet"; }
my_log() { echo "$(my_dir)/mariadb.log"; }
my_sql() { mariadb --no-defaults -S "$(my_dir)/run/mysqld.sock" -u root "$@"; }
my_running() { pid_alive "$(my_dir)/run/mysqld.pid" && my_sql -e 'SELECT 1' >/dev/null 2>&1; }

my_configure() {
  local d; d=$(my_dir)
  own_dir mysql "$d"; own_dir mysql "$d/run"
  # Our own option file only (--defaults-file): /etc/mysql plays no part.
  # innodb_flush_log_at_trx_commit=2: like PostgreSQL's synchronous_commit=off.
  cat >"$d/my.cnf" <<EOF
[mysqld]
datadir = $d/data
socket = $d/run/mysqld.sock
pid-file = $d/run/mysqld.pid
log-error = $(my_log)
port = $MYSQL_PORT
bind-address = 127.0.0.1
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
max_connections = 300
innodb_flush_log_at_trx_commit = 2
user = mysql
EOF
  [ -d "$d/data/mysql" ] && return
  mariadb-install-db --defaults-file="$d/my.cnf" --auth-root-authentication-method=socket \
    --skip-test-db >>"$d/install.log" 2>&1 || fail_start MariaDB "$d/install.log"
}

my_start() {
  if my_running; then echo "    MariaDB is already running ($(my_url))"; return; fi
  step "Starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  my_configure
  setsid mariadbd --defaults-file="$(my_dir)/my.cnf" </dev/null >>"$(my_log)" 2>&1 &
  ALIVE="kill -0 $!" wait_until my_sql -e 'SELECT 1' || fail_start MariaDB "$(my_log)"
  my_provision
}

my_provision() {
  my_sql <<'EOF'
CREATE DATABASE IF NOT EXISTS novalet CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'novalet'@'127.0.0.1' IDENTIFIED BY 'novalet';
CREATE USER IF NOT EXISTS 'novalet'@'localhost' IDENTIFIED BY 'novalet';
GRANT ALL ON *.* TO 'novalet'@'127.0.0.1';
GRANT ALL ON *.* TO 'novalet'@'localhost';
EOF
}

my_stop() {
  local pidfile; pidfile="$(my_dir)/run/mysqld.pid"
  if ! pid_alive "$pidfile"; then echo "    MariaDB is not running"; return; fi
  step "Stopping MariaDB"
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid"
  wait_until bash -c "! kill -0 $pid" || die "MariaDB (pid $pid) did not stop; see $(my_log)"
}

# --- commands ------------------------------------------------------------------

# Sets NAMES to the servers named (checked), or to all of them.
select_names() {
  [ $# -gt 0 ] || set -- "${ALL[@]}"
  for name in "$@"; do
    case $name in
      rabbitmq|postgresql|mariadb) ;;
      *) die "unknown server '$name' (known: ${ALL[*]})" ;;
    esac
  done
  NAMES=("$@")
}

short() { case $1 in rabbitmq) echo rabbit ;; postgresql) echo pg ;; mariadb) echo my ;; esac; }

write_urls() {
  mkdir -p "$DIR"
  cat >"$DIR/urls.env" <<EOF
NOVALET_TEST_TRANSPORT_URL=$(rabbit_url)
NOVALET_TEST_PG_URL=$(pg_url)
NOVALET_TEST_MYSQL_URL=$(my_url)
EOF
  echo "URLs (also in $DIR/urls.env):"
  sed 's/^/    /' "$DIR/urls.env"
}

cmd_start() {
  install_missing "${NAMES[@]}"
  mkdir -p "$DIR"
  for name in "${NAMES[@]}"; do "$(short "$name")_start"; done
  write_urls
}

cmd_stop() {
  for name in "${NAMES[@]}"; do "$(short "$name")_stop"; done
}

cmd_restart() {
  local started ms
  started=$(date +%s%N)
  cmd_stop
  cmd_start
  ms=$(( ($(date +%s%N) - started) / 1000000 ))
  printf 'Restarted %s in %d.%01d s\n' "${NAMES[*]}" $((ms / 1000)) $((ms % 1000 / 100))
}

cmd_status() {
  local name s
  for name in "${ALL[@]}"; do
    s=$(short "$name")
    if "${s}_running"; then
      printf '%-11s running  %s\n' "$name" "$("${s}_url")"
    else
      printf '%-11s stopped  (%s)\n' "$name" "$("${s}_url")"
    fi
  done
}

cmd_vhost() {
  [ $# -eq 2 ] || die "usage: vhost add|delete NAME"
  rabbit_running || die "RabbitMQ is not running; run '$0 start rabbitmq' first"
  case $1 in
    add) rabbit_ctl -q add_vhost "$2" >/dev/null
         rabbit_ctl -q set_permissions -p "$2" novalet '.*' '.*' '.*' >/dev/null ;;
    delete) rabbit_ctl -q delete_vhost "$2" >/dev/null ;;
    *) die "vhost: unknown action '$1' (add or delete)" ;;
  esac
}

# The queues and exchanges compute host $1's user may declare, publish to and
# read (one regular expression for configure, write and read): its own topics'
# queues (compute.HOST, network.HOST and the shared network topic, each with its
# fanout queues and exchange) and its own reply queues; amq.default, the default
# exchange, routes requests to any queue by name. Nothing of another host's, and
# no read right on the exchange novalet, so it cannot bind its queues to other
# hosts' messages.
host_user_resources() {
  local h=${1//./\\.} u=${2:-compute-$1}
  u=${u//./\\.}
  echo "^(amq\\.default|(compute\\.$h|network|network\\.$h)(\\.fanout\\..+)?|novalet\\.fanout\\.(compute\\.$h|network|network\\.$h)|reply\\.$u\\..+)\$"
}

cmd_host_user() {
  rabbit_running || die "RabbitMQ is not running; run '$0 start rabbitmq' first"
  case ${1:-} in
    add) [ $# -eq 4 ] || [ $# -eq 5 ] || die "usage: host-user add HOST PASSWORD VHOST [USER]"
         local user=${5:-compute-$2}
         rabbit_ctl -q list_users | awk '{print $1}' | grep -qxF "$user" \
           || rabbit_ctl -q add_user "$user" "$3" >/dev/null
         rabbit_ctl -q change_password "$user" "$3" >/dev/null
         local re; re=$(host_user_resources "$2" "$user")
         rabbit_ctl -q set_permissions -p "$4" "$user" "$re" "$re" "$re" >/dev/null ;;
    delete) [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: host-user delete HOST [USER]"
            rabbit_ctl -q delete_user "${3:-compute-$2}" >/dev/null ;;
    *) die "host-user: unknown action '${1:-}' (add or delete)" ;;
  esac
}

main() {
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR=$2; shift 2 ;;
      --dir=*) DIR=${1#--dir=}; shift ;;
      -h|--help|help) usage; exit 0 ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || { usage; exit 2; }
  DIR=$(realpath -m "$DIR")
  local command=$1; shift
  case $command in start|stop|restart|vhost|host-user) [ "$(id -u)" -eq 0 ] \
    || die "'$command' needs root: the servers run as their Debian system users" ;; esac
  case $command in
    start) select_names "$@"; cmd_start ;;
    stop) select_names "$@"; cmd_stop ;;
    restart) select_names "$@"; cmd_restart ;;
    status) [ $# -eq 0 ] || die "status takes no servers"; cmd_status ;;
    vhost) cmd_vhost "$@" ;;
    host-user) cmd_host_user "$@" ;;
    *) usage >&2; die "unknown command '$command'" ;;
  esac
}

main "$@"
