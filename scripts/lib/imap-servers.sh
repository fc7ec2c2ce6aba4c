# Sourced by the IMAP benchmark scripts (bash): a throw-away Dovecot and a throw-away
# `mss serve` listening for IMAPS on loopback, both with the development certificate of
# one mss data directory. The caller sets VENV and kills DOVECOT_PID / MSS_PID on exit.
#
#   mss_data WORK USER PASSWORD         mss init + one professional in WORK/mss
#   dovecot_start WORK USER PASSWORD [plain|argon2id]   sets DOVECOT_PORT, DOVECOT_PID
#   dovecot_stop
#   mss_start WORK [WORKERS]            sets MSS_PORT, MSS_PID (log in WORK/mss.log)
#   mss_stop

DOVECOT_PID=""
MSS_PID=""

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # PORT: until it accepts a connection (10 s at most)
  for _ in $(seq 50); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
}

mss_data() {
  "$VENV/bin/mss" init --data-dir "$1/mss" >/dev/null
  echo "$3" | "$VENV/bin/mss" pro add "$2" --password-stdin --data-dir "$1/mss" >/dev/null
}

# Debian's dovecot-imapd, installed with apt-get when missing (its system service stopped)
dovecot_install() {
  command -v dovecot >/dev/null && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
  $sudo service dovecot stop >/dev/null 2>&1 || true
}

# One user in a passwd-file, maildir, implicit TLS with mss's certificate. The password
# scheme is PLAIN by default (the most favourable to Dovecot); `argon2id` gives it a
# memory-hard hash like mss's, with its authentication cache on.
dovecot_start() {
  local work="$1" user="$2" password="$3" scheme="${4:-plain}"
  local dir="$work/dovecot" mail_user hash cache=""
  dovecot_install
  chmod 755 "$work"  # Dovecot's unprivileged auth and mail processes traverse it
  mail_user="$(id -un)"
  [ "$(id -u)" = 0 ] && mail_user=nobody
  local uid gid; uid="$(id -u "$mail_user")"; gid="$(id -g "$mail_user")"
  mkdir -p "$dir/home" "$dir/run"
  chown "$uid:$gid" "$dir/home"
  cp "$work/mss/certs/server.crt" "$work/mss/certs/server.key" "$dir/"
  DOVECOT_PORT="$(free_port)"
  if [ "$scheme" = argon2id ]; then
    hash="$(doveadm -o stats_writer_socket_path= pw -s ARGON2ID -p "$password")"
    cache="auth_cache_size = 10M"
  else
    hash="{PLAIN}$password"
  fi
  echo "$user:$hash" > "$dir/passwd"
  chmod 644 "$dir/passwd"
  cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
instance_name = mss-bench-$$
listen = 127.0.0.1
protocols = imap
ssl = required
ssl_cert = <$dir/server.crt
ssl_key = <$dir/server.key
log_path = $dir/dovecot.log
first_valid_uid = $uid
mail_location = maildir:~/Maildir
mail_uid = $uid
mail_gid = $gid
default_login_user = $mail_user
default_internal_user = $mail_user
$cache
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$dir/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $DOVECOT_PORT
    ssl = yes
  }
}
CONF
  dovecot -F -c "$dir/dovecot.conf" &
  DOVECOT_PID=$!
  wait_port "$DOVECOT_PORT"
}

dovecot_stop() {
  [ -n "$DOVECOT_PID" ] || return 0
  kill "$DOVECOT_PID" 2>/dev/null || true
  wait "$DOVECOT_PID" 2>/dev/null || true
  DOVECOT_PID=""
}

# `mss serve` with IMAPS only, WORKERS worker processes (default: one per core)
mss_start() {
  local work="$1" workers="${2:-0}"
  MSS_PORT="$(free_port)"
  MSS_SERVER_WORKERS="$workers" MSS_LISTEN_MX=0 MSS_LISTEN_SUBMISSION=0 \
    MSS_LISTEN_SUBMISSIONS=0 MSS_LISTEN_IMAP=0 MSS_LISTEN_HTTPS=0 MSS_LISTEN_IMAPS="$MSS_PORT" \
    "$VENV/bin/mss" serve --data-dir "$work/mss" 2>"$work/mss.log" &
  MSS_PID=$!
  for _ in $(seq 100); do
    grep -q "serving" "$work/mss.log" 2>/dev/null && break
    sleep 0.2
  done
  wait_port "$MSS_PORT"
  sleep 1  # the workers
}

mss_stop() {
  [ -n "$MSS_PID" ] || return 0
  kill -INT "$MSS_PID" 2>/dev/null || true
  wait "$MSS_PID" 2>/dev/null || true
  MSS_PID=""
}
