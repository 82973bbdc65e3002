#!/usr/bin/env bash
# Golden flow for kcat (Debian's build links librdkafka 2.0.2): produce one record with
# `kcat -P`, then read it back with `kcat -C -o beginning -c 1 -e`.
# Usage: kcat.sh BOOTSTRAP. Exits 0 only when the record comes back as k1 / hello-golden / h1=v1.
set -euo pipefail

bootstrap="$1"
printf 'k1:hello-golden\n' |
  kcat -P -b "$bootstrap" -t golden -p 0 -K: -H h1=v1 -X client.id=golden-kcat
echo "produced (kcat -P exited 0)"
consumed="$(kcat -C -b "$bootstrap" -t golden -p 0 -o beginning -c 1 -e \
  -f '%k|%s|%h\n' -X client.id=golden-kcat)"
if [[ "$consumed" != "k1|hello-golden|h1=v1" ]]; then
  echo "consumed unexpected record: $consumed" >&2
  exit 1
fi
echo "consumed $consumed"
