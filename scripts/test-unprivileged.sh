#!/bin/sh
# Runs the isolation, secrets, spare and faults suites as an ordinary user (DESIGN "Tests": CI runs as
# root, users do not; SPEC §3 promises isolation without any privilege).
#
#   scripts/test-unprivileged.sh [extra `bun test` arguments]
#
# As root: makes the user $BSANDBOX_USER (default `bsandbox`) with
# `useradd -m` when it is missing, checks that it can reach and read the
# checkout (the addon, the init helper, node_modules/.bin/bun, __test__/),
# and runs `bun test ./__test__/isolation.test.ts` as that user with
# `runuser` (the secrets and spare suites too), from the checkout, in a clean environment with HOME set to the
# user's home. Ancestor directories of the checkout that the user cannot
# enter get `o+x` (search only, never read or write), and the script says
# which; anything else it cannot fix is reported, and it stops.
# As any other user: runs the suite directly (that user is unprivileged).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd -P)
# Word-split on purpose: four files.
suite="./__test__/isolation.test.ts ./__test__/secrets.test.ts ./__test__/spare.test.ts ./__test__/faults.test.ts"
bun="$root/node_modules/.bin/bun"
user=${BSANDBOX_USER:-bsandbox}

if [ ! -x "$bun" ]; then
  echo "test-unprivileged: $bun is missing: run npm install first" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "test-unprivileged: not root: running the suite as $(id -un) (uid $(id -u)) directly"
  cd "$root"
  exec "$bun" test $suite "$@"
fi

if ! id -u "$user" >/dev/null 2>&1; then
  echo "test-unprivileged: creating the user $user (useradd -m)"
  useradd -m -s /bin/sh "$user"
fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
if [ "$uid" -eq 0 ]; then
  echo "test-unprivileged: $user has uid 0; pick another user with BSANDBOX_USER" >&2
  exit 1
fi
if [ -z "$home" ] || [ ! -d "$home" ]; then
  echo "test-unprivileged: $user has no home directory ($home)" >&2
  exit 1
fi

as_user() {
  runuser -u "$user" -- "$@"
}

# Every ancestor of the checkout must be searchable by the user.
dir=$root
while :; do
  if ! as_user test -x "$dir"; then
    echo "test-unprivileged: $user cannot enter $dir ($(stat -c %A "$dir")): chmod o+x $dir"
    chmod o+x "$dir"
  fi
  [ "$dir" = / ] && break
  dir=$(dirname "$dir")
done

# What the suite loads must be readable (the default umask makes it so).
unreadable=
check_readable() {
  as_user test -r "$1" || unreadable="$unreadable $1"
}
found_init=
for candidate in "$root/bun-sandbox-init" "$root/target/release/bun-sandbox-init" "$root/target/debug/bun-sandbox-init"; do
  if [ -f "$candidate" ]; then
    found_init=1
    check_readable "$candidate"
  fi
done
found_addon=
for addon in "$root"/*.node; do
  if [ -f "$addon" ]; then
    found_addon=1
    check_readable "$addon"
  fi
done
if [ -z "$found_init" ] || [ -z "$found_addon" ]; then
  echo "test-unprivileged: the addon is not built (no .node or bun-sandbox-init): run node scripts/build.js" >&2
  exit 1
fi
check_readable "$root/index.js"
check_readable "$root/__test__/isolation.test.ts"
check_readable "$(readlink -f "$bun")"
for d in "$root/__test__" "$root/node_modules" "$root/target"; do
  if [ -d "$d" ] && ! as_user test -r "$d" -a -x "$d"; then
    unreadable="$unreadable $d/"
  fi
done
if [ -n "$unreadable" ]; then
  echo "test-unprivileged: $user cannot read:$unreadable" >&2
  echo "test-unprivileged: make the checkout readable by others (chmod -R o+rX) or run this from a readable copy" >&2
  exit 1
fi

echo "test-unprivileged: running $suite as $user (uid $uid, HOME=$home) in $root"
cd "$root"
exec runuser -u "$user" -- env -i \
  HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/sh \
  PATH=/usr/local/bin:/usr/bin:/bin \
  LANG="${LANG:-C.UTF-8}" TERM="${TERM:-dumb}" ${NO_COLOR+NO_COLOR="$NO_COLOR"} ${CI+CI="$CI"} \
  "$bun" test $suite "$@"
