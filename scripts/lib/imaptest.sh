# Sourced by the scripts that run Dovecot's imaptest (bash).
#
#   imaptest_build OUT    builds OUT/bin/imaptest and OUT/tests once (nothing when present)
#
# imaptest is release-2.3, which builds against Debian 12's dovecot-dev 2.3.19: from
# IMAPTEST_GIT (a clone or bare git dir of github.com/dovecot/imaptest) or cloned from
# GitHub. Build needs: dovecot-dev autoconf automake libtool pkg-config make gcc
# libssl-dev (installed with apt-get when missing).

imaptest_build() {
  local out="$1"
  [ -x "$out/bin/imaptest" ] && [ -d "$out/tests" ] && return 0
  local deps="dovecot-dev autoconf automake libtool pkg-config make gcc libssl-dev git"
  if ! dpkg -s $deps >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $deps >/dev/null
  fi
  local git_dir="${IMAPTEST_GIT:-}"
  if [ -z "$git_dir" ]; then
    git_dir="$out/imaptest.git"
    [ -d "$git_dir" ] || git clone -q --bare https://github.com/dovecot/imaptest.git "$git_dir"
  fi
  [ -d "$git_dir/.git" ] && git_dir="$git_dir/.git"
  rm -rf "$out/src" && mkdir -p "$out/src" "$out/bin"
  git --git-dir="$git_dir" archive release-2.3 | tar -x -C "$out/src"
  (
    cd "$out/src"
    # Debian's 2.3.19 imap_parser_create() takes a fourth (params) argument
    sed -i 's/imap_parser_create(\(.*\), NULL, (size_t)-1)/imap_parser_create(\1, NULL, (size_t)-1, NULL)/' \
      src/commands.c src/imap-client.c src/test-parser.c
    # upstream fixes from main: skip nonauth tests, count skipped groups and cancelled tests, 30 s timeout
    for c in 2fce72e 9ea2bdd 6f99cd0 1425ad0; do
      git --git-dir="$git_dir" format-patch -1 --stdout "$c" | patch -s -p1
    done
    ./autogen.sh >/dev/null 2>&1
    ./configure -q --with-dovecot=/usr/lib/dovecot >/dev/null
    make -s -j2 LDFLAGS='-Wl,-rpath,/usr/lib/dovecot' >/dev/null 2>&1
  )
  cp "$out/src/src/imaptest" "$out/bin/imaptest"
  rm -rf "$out/tests" && mkdir "$out/tests"
  git --git-dir="$git_dir" archive release-2.3 src/tests | tar -x -C "$out/tests" --strip-components=2
}
