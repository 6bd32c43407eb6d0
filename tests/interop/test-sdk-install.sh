#!/bin/bash
# Install Sluice from the build tree into a staging root, build the
# out-of-tree lines example against the installed SDK only (pkg-config
# sluice-plugin), run the installed sluiced with it, send lines, stop with
# SIGTERM and read the records back. Prints TAP.
# SPDX-License-Identifier: Apache-2.0
set -u

builddir=${SLUICE_BUILDDIR:?SLUICE_BUILDDIR must point at the build tree}
srcdir=${SLUICE_SRCDIR:?SLUICE_SRCDIR must point at the source tree}
libdir_py=$srcdir/tests/lib

n=0
failed=0
ok () {    # ok CONDITION-STATUS DESCRIPTION
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
diag () { sed 's/^/# /'; }
bail () { echo "Bail out! $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-sdk.XXXXXX") || bail "mktemp failed"
sluiced_pid=
cleanup () {
  if [ -n "$sluiced_pid" ] && kill -0 "$sluiced_pid" 2>/dev/null; then
    kill -KILL "$sluiced_pid" 2>/dev/null
    wait "$sluiced_pid" 2>/dev/null
  fi
  [ -n "${SLUICE_KEEP_TMP:-}" ] || { chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"; }
}
trap cleanup EXIT

for tool in make cc pkg-config nm; do
  command -v $tool >/dev/null || bail "$tool not found (apt-get install build-essential pkgconf binutils)"
done

# --- 1. install into a staging root ------------------------------------------------
root=$tmp/root
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$builddir" install DESTDIR="$root" \
  >"$tmp/install.log" 2>&1
status=$?
ok $status "make install DESTDIR=staging root"
[ $status -eq 0 ] || { tail -30 "$tmp/install.log" | diag; bail "install failed"; }

pc=$(find "$root" -name sluice-plugin.pc -path '*/pkgconfig/*' | head -1)
sluiced=$(find "$root" -name sluiced -type f -perm -u+x | head -1)
libsluice=$(find "$root" -name 'libsluice.so*' | head -1)
[ -n "$pc" ] && [ -n "$sluiced" ] && [ -n "$libsluice" ]
ok $? "installed sluice-plugin.pc, sluiced and libsluice"
[ -n "$pc" ] && [ -n "$sluiced" ] || bail "incomplete install"

# The installed .pc names the configured prefix; relocate it into the staging
# root by prefixing every absolute variable value (prefix, and libdir /
# includedir when configure was given absolute ones). Only sluice-plugin moves:
# its dependencies (glib, json-glib) come from the system as usual.
pcdir=$tmp/pkgconfig
mkdir -p "$pcdir"
sed -E "s|^([A-Za-z_]+)=/|\\1=$root/|" "$pc" >"$pcdir/sluice-plugin.pc"
export PKG_CONFIG_PATH=$pcdir
unset PKG_CONFIG_SYSROOT_DIR CPATH C_INCLUDE_PATH LIBRARY_PATH CFLAGS CPPFLAGS LDFLAGS

cflags=$(pkg-config --cflags sluice-plugin)
libs=$(pkg-config --libs sluice-plugin)
pluginsdir=$(pkg-config --variable=pluginsdir sluice-plugin)
inst_libdir=$(pkg-config --variable=libdir sluice-plugin)
case "$cflags $libs" in
  *"$srcdir"*|*"$builddir"*) leak=1 ;;
  *"$root"*) leak=0 ;;
  *) leak=1 ;;
esac
ok $leak "pkg-config sluice-plugin points into the staging root only"
echo "cflags: $cflags" | diag
[ -f "$(echo "$cflags" | grep -o -- "-I$root[^ ]*" | head -1 | cut -c3-)/sluice/sluice.h" ]
ok $? "the installed include dir holds sluice/sluice.h"

# --- 2. build the example out of tree ----------------------------------------------
example=$tmp/example
cp -r "$srcdir/examples/transport-lines" "$example"
chmod -R u+w "$example"   # the source tree may be read-only (make distcheck)
rm -f "$example"/*.so "$example"/*.o
# A clean environment for the example's make: nothing of this build's make.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -C "$example" \
  >"$tmp/example.log" 2>&1
status=$?
ok $status "the example builds with make against the installed SDK"
[ $status -eq 0 ] || { tail -30 "$tmp/example.log" | diag; bail "example build failed"; }
! grep -qF -e "$srcdir" -e "$builddir" "$tmp/example.log"
status=$?
ok $status "no build-tree path appears in the example's compile commands"
[ $status -eq 0 ] || diag <"$tmp/example.log"
exported=$(nm -D --defined-only "$example/transport-lines.so" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }')
[ "$exported" = transport_lines_LTX_sluice_plugin_query ]
ok $? "the example exports only transport_lines_LTX_sluice_plugin_query"
[ "$exported" = transport_lines_LTX_sluice_plugin_query ] || echo "$exported" | diag

# --- 3. run the installed sluiced with it -------------------------------------------
key=$(head -c 32 /dev/urandom | base64)
data=$tmp/data
cat >"$tmp/sluice.conf" <<EOF
[hub]
hostname = localhost
data-dir = $data
workers = 2

[storage]
plugin = file

[auth]
chain = key

[auth.key]
plugin = key

[policy.sdk-sender]
primary-key = $key
rights = Send

[stream.events]
partitions = 4
durability = batch

[transport.lines]
plugin = lines
listen = 127.0.0.1:0
stream = events
EOF

mkfifo "$tmp/stdout"
LD_LIBRARY_PATH=$inst_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
SLUICE_PLUGIN_PATH=$pluginsdir:$example \
  "$sluiced" --config "$tmp/sluice.conf" --data-dir "$data" \
  >"$tmp/stdout" 2>"$tmp/sluiced.log" &
sluiced_pid=$!
exec 3<"$tmp/stdout"
address=
ready=1
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ] && IFS= read -r -t $((deadline - SECONDS)) -u 3 line; do
  case "$line" in
    "listening transport.lines plain "*) address=${line##* } ;;
    ready) ready=0; break ;;
  esac
done
ok $ready "the installed sluiced loads the example and prints ready"
[ $ready -eq 0 ] && [ -n "$address" ] || { diag <"$tmp/sluiced.log"; bail "sluiced did not start"; }
cat <&3 >/dev/null &   # keep its stdout drained

cat >"$tmp/client.py" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import sluicetest as st
host, _, port = sys.argv[2].rpartition(":")
with st.LinesClient((host, int(port))) as c:
    print(c.auth(st.sas_token("localhost", sys.argv[3], skn="sdk-sender")))
    c.send(*[json.dumps({"key": "k%d" % i, "properties": {"i": str(i)}, "body": "sdk-%d" % i})
             for i in range(5)])
    for i in range(5):
        print(c.recv_line())
EOF
/usr/bin/python3 "$tmp/client.py" "$libdir_py" "$address" "$key" >"$tmp/answers" 2>&1
status=$?
[ $status -eq 0 ] && [ "$(head -1 "$tmp/answers")" = ok ]
ok $? "the token is accepted (ok)"
[ "$(tail -n +2 "$tmp/answers" | grep -cE '^ok [0-3] [0-9]+$')" -eq 5 ]
ok $? "five lines answered ok PARTITION OFFSET"
diag <"$tmp/answers"

kill -TERM "$sluiced_pid"
wait "$sluiced_pid"
status=$?
sluiced_pid=
ok $status "SIGTERM stops the installed sluiced with exit status 0"
[ $status -eq 0 ] || tail -20 "$tmp/sluiced.log" | diag

# --- 4. read the records back (build-tree sluice-dump on the stopped data dir) ------
dump=$builddir/tests/tools/sluice-dump
if [ -x "$dump" ]; then
  SLUICE_PLUGIN_PATH=$builddir/plugins/storage-file:${SLUICE_PLUGIN_PATH:-} \
    "$dump" --config "$tmp/sluice.conf" --data-dir "$data" --stream events \
    >"$tmp/dump" 2>"$tmp/dump.err"
  status=$?
  ok $status "sluice-dump reads the stream"
  [ $status -eq 0 ] || diag <"$tmp/dump.err"
  /usr/bin/python3 - "$tmp/answers" "$tmp/dump" <<'EOF'
import json, sys
answers = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
records = {(r["partition"], r["offset"]): r for r in map(json.loads, open(sys.argv[2]))}
for i, a in enumerate(answers):
    r = records.get((int(a[1]), int(a[2])))
    want = {"key": "k%d" % i, "headers": {"i": str(i)}, "body": "sdk-%d" % i}
    if r is None or {k: r[k] for k in want} != want:
        print("line %d: want %r at %s/%s, found %r" % (i, want, a[1], a[2], r))
        sys.exit(1)
EOF
  ok $? "every answered line is stored at its partition and offset with key, headers, body"
else
  ok 1 "sluice-dump reads the stream (tests/tools/sluice-dump not built: run make check)"
fi

echo "1..$n"
[ $failed -eq 0 ]
