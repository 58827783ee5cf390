#!/usr/bin/env bash
# Installs what building and testing need, only when missing (Debian 12): PostgreSQL 15
# server and client (psql, pgbench), libpq and OpenSSL headers, pkg-config, promtool.
set -euo pipefail
missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
command -v psql >/dev/null || missing+=(postgresql-client-15)
command -v pgbench >/dev/null || missing+=(postgresql-15)
[ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v promtool >/dev/null || missing+=(prometheus)   # the metrics tests validate with promtool
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} (run as root or install them)" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
# Package installs must not start a system-wide cluster: the tests start their own.
policy=/usr/sbin/policy-rc.d made=
if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; made=1; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
[ -n "$made" ] && rm -f $policy
exit 0
