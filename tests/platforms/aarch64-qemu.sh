#!/usr/bin/env bash
# Run the universal cfsslpy.pyz on aarch64 for real: under qemu-user, inside a Debian arm64 root filesystem,
# with that filesystem's own python3, openssl and SoftHSM2 (all arm64 binaries).
#
#   tests/platforms/aarch64-qemu.sh [PYZ]          (PYZ defaults to dist/cfsslpy.pyz)
#
# Steps (each prints one PASS/FAIL line; the script exits 1 if any failed, 2 on a setup error):
#   version (-verbose names the cpXY-aarch64 target), the unpacked binary parts are aarch64 ELF, selfcheck,
#   gencert -initca | json-split -bare, gencert of a
#   leaf, sign of an openssl-made CSR, ocspsign (the CA as its own responder), json-split of the OCSP
#   output, and PKCS#11 through the rootfs's arm64 libsofthsm2.so: softhsm2-util --init-token, token
#   list/generate, gencert -initca / sign / ocspsign with a pkcs11: URI key. Every result is checked with the
#   rootfs's openssl (verify, x509, ocsp -respin) run under qemu as well.
#
# Needs on the host: qemu-user-static (qemu-aarch64-static) and, the first time, debootstrap and root
# (Debian: apt-get install qemu-user-static debootstrap). The root filesystem is cached in
# build/aarch64-rootfs (build/aarch64-rootfs-SUITE for another suite; override with AARCH64_ROOTFS); it is
# made when missing, which is the only network use (the Debian mirror, MIRROR=, default
# http://deb.debian.org/debian; suite SUITE=, default bookworm = CPython 3.11, trixie = CPython 3.13).
# No binfmt_misc registration is needed: as root the script chroots (unshare --root) and runs
# /usr/bin/qemu-aarch64-static inside explicitly; without root it uses qemu-aarch64-static -L ROOTFS.
#
# Environment: AARCH64_TIMEOUT (seconds per emulated command, default 900), KEEP_WORK=1 (keep the work
# directory, under ROOTFS/tmp), AARCH64_RUNNER=chroot-binfmt|chroot-qemu|qemu-L (force a runner).
# shellcheck disable=SC2015  # "A && B || die" is meant: die when either fails
set -u
set -o pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
PYZ=${1:-$REPO/dist/cfsslpy.pyz}
SUITE=${SUITE:-bookworm}
ROOTFS=${AARCH64_ROOTFS:-$REPO/build/aarch64-rootfs$([ "$SUITE" = bookworm ] || echo "-$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,softhsm2,openssl,ca-certificates
TIMEOUT=${AARCH64_TIMEOUT:-900}
QEMU=$(command -v qemu-aarch64-static || true)
STAMP="cfsslpy aarch64 rootfs v1: suite=$SUITE packages=$PACKAGES"

die() { echo "aarch64-qemu: error: $*" >&2; exit 2; }

case ${1:-} in -h | -help | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# -le 1 ] || die "usage: $0 [PYZ]"
[ -f "$PYZ" ] || die "no pyz at $PYZ (build it with: python3 build.py)"
PYZ=$(cd "$(dirname "$PYZ")" && pwd)/$(basename "$PYZ")
[ -n "$QEMU" ] || die "qemu-aarch64-static not found (Debian: apt-get install qemu-user-static)"
START=$SECONDS

# ---------------------------------------------------------------------------------------------------------
# The root filesystem: debootstrap's first stage (arch-independent: it only downloads and unpacks the
# Priority: required packages), then the remaining packages (python3, softhsm2, openssl...) unpacked the same
# way debootstrap does. The second stage (dpkg --configure under emulation) is not needed for what runs
# here and would need binfmt_misc, so it is skipped: no maintainer script runs.
rootfs_ok() {
  [ -f "$ROOTFS/.cfsslpy-rootfs" ] && [ "$(cat "$ROOTFS/.cfsslpy-rootfs")" = "$STAMP" ] &&
    [ -x "$ROOTFS/usr/bin/python3" ] && [ -x "$ROOTFS/usr/bin/openssl" ] && [ -x "$ROOTFS/usr/bin/softhsm2-util" ] &&
    [ -x "$ROOTFS/usr/bin/uname" ] && [ -e "$ROOTFS/usr/lib/softhsm/libsofthsm2.so" ]
}

make_rootfs() {
  [ "$(id -u)" = 0 ] || die "the rootfs $ROOTFS is missing and making it needs root (debootstrap)"
  command -v debootstrap >/dev/null || die "debootstrap not found (Debian: apt-get install debootstrap)"
  local tmp="$ROOTFS.partial" t0=$SECONDS p deb
  echo "== making the Debian $SUITE arm64 rootfs in $ROOTFS (from $MIRROR)"
  rm -rf "$tmp" && mkdir -p "$(dirname "$ROOTFS")" || die "cannot prepare $tmp"
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$MIRROR" \
    >"$tmp.log" 2>&1 || { tail -n 20 "$tmp.log" >&2; die "debootstrap failed (log: $tmp.log)"; }
  for p in $(<"$tmp/debootstrap/base"); do  # one line of space-separated names
    deb=$(awk -v p="$p" '$1 == p { print $2 }' "$tmp/debootstrap/debpaths")
    [ -n "$deb" ] && [ -f "$tmp$deb" ] || die "debootstrap did not download $p"
    dpkg-deb --fsys-tarfile "$tmp$deb" | tar -C "$tmp" --skip-old-files -xf - || die "cannot unpack $deb"
  done
  install -m 0755 "$QEMU" "$tmp/usr/bin/qemu-aarch64-static" || die "cannot copy qemu into the rootfs"
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  mkdir -p "$tmp/tmp" && chmod 1777 "$tmp/tmp"
  echo "$STAMP" >"$tmp/.cfsslpy-rootfs"
  rm -rf "$ROOTFS" && mv "$tmp" "$ROOTFS" && mv "$tmp.log" "$ROOTFS.debootstrap.log" || die "cannot move $tmp into place"
  rootfs_ok || die "the new rootfs lacks python3, openssl, softhsm2-util or libsofthsm2.so"
  echo "== rootfs made in $((SECONDS - t0))s"
}

if rootfs_ok; then
  echo "== rootfs: $ROOTFS (cached)"
else  # one maker at a time; a concurrent run waits and then finds the rootfs made
  mkdir -p "$(dirname "$ROOTFS")" && exec 9>"$ROOTFS.lock" && flock 9 || die "cannot lock $ROOTFS.lock"
  rootfs_ok || make_rootfs
  exec 9>&-
fi
# the host's qemu may have been upgraded since the rootfs was made
if [ "$(id -u)" = 0 ] && ! cmp -s "$QEMU" "$ROOTFS/usr/bin/qemu-aarch64-static"; then
  install -m 0755 "$QEMU" "$ROOTFS/usr/bin/qemu-aarch64-static" || die "cannot copy qemu into the rootfs"
fi

# ---------------------------------------------------------------------------------------------------------
# How to run an arm64 program of the rootfs. chroot-binfmt: the kernel runs it (binfmt_misc registered for
# aarch64, or an aarch64 host); chroot-qemu: chrooted, the static qemu named explicitly (no binfmt_misc
# needed; a guest program cannot exec another one, and none of the commands here does); qemu-L: no chroot,
# qemu maps absolute paths into ROOTFS when they exist there (for non-root users).
WORK=$(mktemp -d "$ROOTFS/tmp/cfsslpy-aarch64.XXXXXX") || die "cannot make a work directory in $ROOTFS/tmp"
chmod 0755 "$WORK"
cleanup() { if [ "${KEEP_WORK:-}" = 1 ]; then echo "== work directory kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

MODE=${AARCH64_RUNNER:-}
probe() { MODE=$1 guest /usr/bin/uname -m 2>/dev/null | grep -qx aarch64; }
guest() {  # guest /abs/program ARGS...: run an arm64 program of the rootfs, cwd = the work directory
  local envs=(PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME="$GWORK/home" TMPDIR="$GWORK/tmp"
    SHIV_ROOT="$GWORK/shiv" SOFTHSM2_CONF="$GWORK/softhsm2.conf")
  case $MODE in
    chroot-binfmt) timeout -k 10 "$TIMEOUT" env -i "${envs[@]}" unshare --root="$ROOTFS" --wd="$GWORK" "$@" ;;
    chroot-qemu) timeout -k 10 "$TIMEOUT" env -i "${envs[@]}" unshare --root="$ROOTFS" --wd="$GWORK" \
      /usr/bin/qemu-aarch64-static "$@" ;;
    qemu-L) (cd "$WORK" && timeout -k 10 "$TIMEOUT" env -i "${envs[@]}" "$QEMU" -L "$ROOTFS" "$ROOTFS$1" "${@:2}") ;;
    *) echo "unknown runner $MODE" >&2; return 2 ;;
  esac
}
can_chroot() { [ "$(id -u)" = 0 ] && unshare --help 2>&1 | grep -q -- '--wd'; }
if [ -n "$MODE" ]; then
  case $MODE in chroot-*) GWORK=/tmp/$(basename "$WORK") ;; *) GWORK=$WORK ;; esac
  probe "$MODE" || die "runner $MODE does not work here"
else
  GWORK=/tmp/$(basename "$WORK")
  if can_chroot && probe chroot-binfmt; then MODE=chroot-binfmt
  elif can_chroot && probe chroot-qemu; then MODE=chroot-qemu
  else
    GWORK=$WORK
    probe qemu-L && MODE=qemu-L || die "cannot run the rootfs's arm64 programs with $QEMU"
  fi
fi
case $MODE in
  chroot-binfmt) RUNNER="chroot into the rootfs, arm64 programs run by binfmt_misc (or natively)" ;;
  chroot-qemu) RUNNER="chroot into the rootfs (unshare --root), /usr/bin/qemu-aarch64-static run explicitly (no binfmt_misc)" ;;
  qemu-L) RUNNER="qemu-aarch64-static -L $ROOTFS (no chroot)" ;;
esac

mkdir -p "$WORK/home" "$WORK/tmp" "$WORK/logs" && install -d -m 0700 "$WORK/shiv" || die "cannot populate $WORK"
cp "$PYZ" "$WORK/cfsslpy.pyz" || die "cannot copy $PYZ"
cd "$WORK" || die "cannot cd to $WORK"

G_UNAME=$(guest /usr/bin/uname -m 2>&1)
G_PYTHON=$(guest /usr/bin/python3 -c 'import platform, sys; print("Python", sys.version.replace("\n", " "), "| platform.machine():", platform.machine(), "|", sys.executable)' 2>&1)
PAIR=$(guest /usr/bin/python3 -c 'import os, sys; print("cp%d%d-%s" % (sys.version_info[0], sys.version_info[1], os.uname().machine))' 2>&1)
echo "== host: $(uname -m), $($QEMU --version | head -n 1)"
echo "== runner: $RUNNER"
echo "== pyz: $PYZ ($(wc -c <"$PYZ") bytes, sha256 $(sha256sum "$PYZ" | cut -c1-16)...)"
echo "== guest uname -m: $G_UNAME"
echo "== guest interpreter: $G_PYTHON (pyz target $PAIR)"
echo "== guest rootfs: $(cat "$ROOTFS/etc/debian_version" 2>/dev/null) ($SUITE), $(guest /usr/bin/openssl version 2>&1)"

# ---------------------------------------------------------------------------------------------------------
# Steps. Each runs in a subshell with its output in logs/NAME.log (shown on failure); fail exits the step.
PASSED=0
FAILED=0
fail() { echo "FAILED: $*" >&2; exit 1; }
note() { echo "$*" >>"$WORK/logs/$STEP.note"; }
pyz() { guest /usr/bin/python3 "$GWORK/cfsslpy.pyz" "$@"; }
ossl() { guest /usr/bin/openssl "$@"; }
gpy() { guest /usr/bin/python3 -c "$@"; }
need() { local f; for f in "$@"; do [ -s "$f" ] || fail "$f is missing (an earlier step failed)"; done; }
mode_of() { stat -c %a "$1"; }
run() {  # run CMD... [>FILE]: echo it to the log (stderr), run it, fail on a non-zero status
  echo "+ $*" >&2
  "$@" || fail "exit status $? from: $*"
}
capture() {  # capture FILE CMD...: run CMD with stdout and stderr in FILE, copy FILE to the log, fail on non-zero
  local out=$1 st
  shift
  echo "+ $*"
  "$@" >"$out" 2>&1
  st=$?
  cat "$out"
  [ $st = 0 ] || fail "exit status $st from: $*"
}
contains() {  # contains FILE TEXT [WHAT]
  grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "${3:-$1} does not contain '$2'"; }
}
step() {  # step NAME FUNCTION
  STEP=$1
  local t0=$SECONDS log="$WORK/logs/$1.log" status
  (set -o pipefail; "$2") >"$log" 2>&1 </dev/null
  status=$?
  local detail=""
  [ -f "$WORK/logs/$1.note" ] && detail=": $(paste -sd ' ' "$WORK/logs/$1.note")"
  if [ $status = 0 ]; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %-24s %4ss%s\n' "$1" $((SECONDS - t0)) "$detail"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %-24s %4ss%s\n' "$1" $((SECONDS - t0)) "$detail"
    tail -n 40 "$log" | cut -c1-300 | sed 's/^/      | /'
  fi
}

PIN=246810
SO_PIN=87654321
LABEL=cfsslpy-aarch64
MODULE=/usr/lib/softhsm/libsofthsm2.so
URI="pkcs11:token=$LABEL;object=ca-ec?module-path=$MODULE&pin-source=file:$GWORK/pin"

s_emulation() {
  [ "$G_UNAME" = aarch64 ] || fail "uname -m in the guest says '$G_UNAME'"
  case $G_PYTHON in *"platform.machine(): aarch64 "*) ;; *) fail "the guest python says: $G_PYTHON" ;; esac
  # the interpreter and the SoftHSM module really are arm64 ELF files (e_machine 183 = EM_AARCH64)
  local f
  for f in "$(readlink -f "$ROOTFS/usr/bin/python3")" "$(readlink -f "$ROOTFS$MODULE")"; do
    [ "$(od -An -tu2 -j18 -N2 "$f" | tr -d ' ')" = 183 ] || fail "$f is not an aarch64 ELF file"
  done
  note "uname -m = $G_UNAME, python3 and libsofthsm2.so are aarch64 ELF"
}

s_version() {
  pyz version >version.out 2>version.err || { st=$?; cat version.out version.err; fail "version exited $st"; }
  cat version.out version.err
  contains version.out "Version: 1.6.5"
  contains version.out "Runtime: python"
  # -verbose names the target the launcher picked for this host, e.g. "Bundle: 0123abcd... (cp311-aarch64, ...)"
  run pyz version -verbose >verbose.out
  cat verbose.out
  contains verbose.out "($PAIR, unpacked in $GWORK/shiv/"
  note "$(tr '\n' ' ' <version.out | sed 's/ *$//'); version -verbose: target $PAIR"
}

s_selfcheck() {
  run pyz selfcheck >selfcheck.json
  cat selfcheck.json
  gpy 'import json, sys; r = json.load(open("selfcheck.json")); assert r["target"] == sys.argv[1], r["target"]; assert r["problems"] == [], r["problems"]; assert r["files_checked"] > 0; print(r["files_checked"], len(r["distributions"]))' \
    "$PAIR" >selfcheck.summary || fail "selfcheck's report is not clean for $PAIR"
  read -r files dists <selfcheck.summary
  note "target $PAIR, $files unpacked files match the manifest's sha256, $dists distributions, no problems"
}

s_binary_parts() {
  # what the pyz unpacked into SHIV_ROOT on its first run: every extension module must be an aarch64 ELF
  local so count=0 bad=0
  while IFS= read -r -d '' so; do
    count=$((count + 1))
    if [ "$(od -An -tu2 -j18 -N2 "$so" | tr -d ' ')" != 183 ]; then bad=$((bad + 1)); echo "not aarch64: $so"; fi
  done < <(find "$WORK/shiv" -name '*.so' -print0)
  find "$WORK/shiv" -name '*.so' | sed "s|^$WORK/||" | sort
  [ $count -gt 0 ] || fail "no extension module was unpacked under SHIV_ROOT"
  [ $bad = 0 ] || fail "$bad of $count extension modules are not aarch64"
  find "$WORK/shiv" -path '*cryptography/hazmat/bindings/_rust*.so' | grep -q . || fail "no cryptography _rust module unpacked"
  note "$count extension modules unpacked under SHIV_ROOT, all aarch64 ELF: $(find "$WORK/shiv" -name '*.so' -printf '%f\n' | sort | paste -sd ' ')"
}

s_gencert_initca() {
  cat >ca-csr.json <<'EOF'
{"CN": "cfsslpy aarch64 test CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "cfsslpy", "C": "US"}],
 "ca": {"expiry": "8760h"}}
EOF
  echo "+ cfsslpy gencert -initca ca-csr.json | cfsslpy json-split -bare ca"
  pyz gencert -initca ca-csr.json | tee ca.json | pyz json-split -bare ca || fail "the pipeline exited non-zero"
  need ca.pem ca-key.pem ca.csr
  [ "$(mode_of ca-key.pem)" = 600 ] || fail "ca-key.pem has mode $(mode_of ca-key.pem), not 600"
  capture verify.out ossl verify -CAfile ca.pem ca.pem
  contains verify.out "ca.pem: OK"
  ossl x509 -in ca.pem -noout -text >ca.txt || fail "openssl cannot read ca.pem"
  contains ca.txt "CA:TRUE"
  ossl x509 -in ca.pem -noout -subject -nameopt RFC2253 >subject.out || fail "openssl cannot read ca.pem's subject"
  contains subject.out "subject=CN=cfsslpy aarch64 test CA,O=cfsslpy,C=US"
  ossl x509 -in ca.pem -noout -pubkey >ca.pub && ossl pkey -in ca-key.pem -pubout >ca-key.pub || fail "openssl cannot read the CA key"
  cmp -s ca.pub ca-key.pub || fail "ca-key.pem is not the key of ca.pem"
  capture req.out ossl req -in ca.csr -noout -verify
  contains req.out "verify OK"
  note "ECDSA P-256 CA; openssl verify: ca.pem: OK, key matches, CA:TRUE, ca-key.pem 0600"
}

s_gencert_leaf() {
  need ca.pem ca-key.pem
  cat >config.json <<'EOF'
{"signing": {"default": {"expiry": "168h"},
 "profiles": {"server": {"expiry": "24h", "usages": ["signing", "digital signature", "key encipherment", "server auth"]},
              "client": {"expiry": "24h", "usages": ["signing", "digital signature", "client auth"]}}}}
EOF
  cat >leaf-csr.json <<'EOF'
{"CN": "leaf.example.net", "hosts": ["leaf.example.net", "192.0.2.10"], "key": {"algo": "rsa", "size": 2048},
 "names": [{"O": "cfsslpy"}]}
EOF
  echo "+ cfsslpy gencert -ca ca.pem -ca-key ca-key.pem -config config.json -profile server leaf-csr.json | cfsslpy json-split -bare leaf"
  pyz gencert -ca ca.pem -ca-key ca-key.pem -config config.json -profile server leaf-csr.json | tee leaf.json |
    pyz json-split -bare leaf || fail "the pipeline exited non-zero"
  need leaf.pem leaf-key.pem leaf.csr
  capture verify.out ossl verify -CAfile ca.pem -purpose sslserver leaf.pem
  contains verify.out "leaf.pem: OK"
  ossl x509 -in leaf.pem -noout -text >leaf.txt || fail "openssl cannot read leaf.pem"
  contains leaf.txt "DNS:leaf.example.net"
  contains leaf.txt "IP Address:192.0.2.10"
  contains leaf.txt "TLS Web Server Authentication"
  ossl x509 -in leaf.pem -noout -pubkey >leaf.pub && ossl pkey -in leaf-key.pem -pubout >leaf-key.pub || fail "cannot read the leaf key"
  cmp -s leaf.pub leaf-key.pub || fail "leaf-key.pem is not the key of leaf.pem"
  note "RSA-2048 leaf, openssl verify -purpose sslserver: leaf.pem: OK, SANs present, key matches"
}

s_sign() {
  need ca.pem ca-key.pem config.json
  run ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -subj "/O=cfsslpy/CN=client.example.net" \
    -addext "subjectAltName=DNS:client.example.net" -keyout client-key.pem -out client.csr
  echo "+ cfsslpy sign -ca ca.pem -ca-key ca-key.pem -config config.json -profile client client.csr | cfsslpy json-split -bare client"
  pyz sign -ca ca.pem -ca-key ca-key.pem -config config.json -profile client client.csr | tee client.json |
    pyz json-split -bare client || fail "the pipeline exited non-zero"
  need client.pem
  capture verify.out ossl verify -CAfile ca.pem -purpose sslclient client.pem
  contains verify.out "client.pem: OK"
  ossl x509 -in client.pem -noout -text >client.txt || fail "openssl cannot read client.pem"
  contains client.txt "DNS:client.example.net"
  contains client.txt "TLS Web Client Authentication"
  note "openssl-made P-384 CSR signed, openssl verify -purpose sslclient: client.pem: OK"
}

s_ocspsign() {
  need ca.pem ca-key.pem leaf.pem
  run pyz ocspsign -ca ca.pem -responder ca.pem -responder-key ca-key.pem -cert leaf.pem -status good >ocsp.json
  cat ocsp.json; echo
  contains ocsp.json '"ocspResponse"'
  sed -n 's/.*"ocspResponse":[[:space:]]*"\([^"]*\)".*/\1/p' ocsp.json | base64 -d >ocsp-b64.der || fail "ocspResponse is not base64"
  need ocsp-b64.der
  capture ocsp.out ossl ocsp -respin ocsp-b64.der -issuer ca.pem -cert leaf.pem -CAfile ca.pem -resp_text
  contains ocsp.out "Response verify OK"
  contains ocsp.out "leaf.pem: good"
  contains ocsp.out "OCSP Response Status: successful"
  note "openssl ocsp -respin: Response verify OK, leaf.pem: good"
}

s_json_split() {
  need ocsp.json ocsp-b64.der ca.json
  run pyz json-split -f ocsp.json -bare ocsp
  need ocsp-response.der
  cmp -s ocsp-response.der ocsp-b64.der || fail "ocsp-response.der differs from the decoded ocspResponse"
  [ "$(mode_of ocsp-response.der)" = 644 ] || fail "ocsp-response.der has mode $(mode_of ocsp-response.der)"
  # an API envelope (no -bare) and -stdout
  printf '{"success":true,"result":%s,"errors":[],"messages":[]}\n' "$(cat ca.json)" >envelope.json
  run pyz json-split -f envelope.json again
  cmp -s again.pem ca.pem && cmp -s again-key.pem ca-key.pem && cmp -s again.csr ca.csr || fail "the envelope split differs"
  pyz json-split -bare -stdout <ca.json >stdout.out || fail "json-split -stdout exited non-zero"
  contains stdout.out "BEGIN CERTIFICATE"
  note "ocsp-response.der (0644) = the decoded response; API envelope split = the -bare split; -stdout works"
}

s_softhsm_init() {
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$GWORK" >softhsm2.conf
  mkdir -p tokens && (umask 077 && echo "$PIN" >pin)
  run guest /usr/bin/softhsm2-util --init-token --free --label "$LABEL" --so-pin "$SO_PIN" --pin "$PIN"
  capture slots.out guest /usr/bin/softhsm2-util --show-slots
  contains slots.out "$LABEL"
  note "arm64 softhsm2-util initialised token '$LABEL'"
}

s_pkcs11_token() {
  need softhsm2.conf pin
  run pyz token list -module "$MODULE" >list.json; cat list.json
  contains list.json "\"$LABEL\""
  run pyz token generate "$URI" -algo ecdsa -size 256 -id 01 >generate.json; cat generate.json
  contains generate.json "BEGIN PUBLIC KEY"
  run pyz token pubkey "$URI" >pubkey.json; cat pubkey.json
  gpy 'import json, sys; a, b = (json.load(open(f))["public_key"] for f in sys.argv[1:]); assert a == b, (a, b); open("token.pub", "w").write(a)' \
    generate.json pubkey.json || fail "token pubkey differs from what token generate printed"
  run pyz token objects "$URI" >objects.json; cat objects.json
  note "token list finds '$LABEL'; token generate made an ECDSA P-256 key pair on it (arm64 libsofthsm2.so)"
}

s_pkcs11_initca() {
  need token.pub
  echo '{"CN": "cfsslpy aarch64 token CA", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "cfsslpy"}]}' >hsm-ca-csr.json
  echo "+ cfsslpy gencert -initca -ca-key '$URI' hsm-ca-csr.json | cfsslpy json-split -bare hsm-ca"
  pyz gencert -initca -ca-key "$URI" hsm-ca-csr.json | tee hsm-ca.json | pyz json-split -bare hsm-ca ||
    fail "the pipeline exited non-zero"
  need hsm-ca.pem hsm-ca.csr
  [ ! -e hsm-ca-key.pem ] || fail "a key file was written for a token key"
  capture verify.out ossl verify -CAfile hsm-ca.pem hsm-ca.pem
  contains verify.out "hsm-ca.pem: OK"
  ossl x509 -in hsm-ca.pem -noout -pubkey >hsm-ca.pub || fail "openssl cannot read hsm-ca.pem"
  cmp -s hsm-ca.pub token.pub || fail "hsm-ca.pem's key is not the token's key"
  note "self-signed by the token key; openssl verify: hsm-ca.pem: OK; no key file written"
}

s_pkcs11_sign() {
  need hsm-ca.pem client.csr config.json
  echo "+ cfsslpy sign -ca hsm-ca.pem -ca-key '$URI' -config config.json -profile client client.csr | cfsslpy json-split -bare hsm-client"
  pyz sign -ca hsm-ca.pem -ca-key "$URI" -config config.json -profile client client.csr | tee hsm-client.json |
    pyz json-split -bare hsm-client || fail "the pipeline exited non-zero"
  need hsm-client.pem
  capture verify.out ossl verify -CAfile hsm-ca.pem -purpose sslclient hsm-client.pem
  contains verify.out "hsm-client.pem: OK"
  ossl verify -CAfile ca.pem hsm-client.pem >/dev/null 2>&1 && fail "hsm-client.pem also verifies under the file CA"
  note "signed with the pkcs11: URI key; openssl verify: hsm-client.pem: OK"
}

s_pkcs11_ocspsign() {
  need hsm-ca.pem hsm-client.pem
  run pyz ocspsign -ca hsm-ca.pem -responder hsm-ca.pem -responder-key "$URI" -cert hsm-client.pem -status revoked \
    -reason keyCompromise >hsm-ocsp.json
  run pyz json-split -f hsm-ocsp.json -bare hsm-ocsp
  need hsm-ocsp-response.der
  capture ocsp.out ossl ocsp -respin hsm-ocsp-response.der -issuer hsm-ca.pem -cert hsm-client.pem -CAfile hsm-ca.pem -resp_text
  contains ocsp.out "Response verify OK"
  contains ocsp.out "hsm-client.pem: revoked"
  contains ocsp.out "Reason: keyCompromise"
  note "OCSP response signed on the token: Response verify OK, hsm-client.pem: revoked (keyCompromise)"
}

echo "== steps (each emulated command can take tens of seconds)"
step emulation s_emulation
step version s_version
step binary-parts s_binary_parts
step selfcheck s_selfcheck
step gencert-initca s_gencert_initca
step gencert-leaf s_gencert_leaf
step sign s_sign
step ocspsign s_ocspsign
step json-split s_json_split
step softhsm2-init-token s_softhsm_init
step pkcs11-token-generate s_pkcs11_token
step pkcs11-gencert-initca s_pkcs11_initca
step pkcs11-sign s_pkcs11_sign
step pkcs11-ocspsign s_pkcs11_ocspsign

echo "== aarch64-qemu: $PASSED passed, $FAILED failed, $((SECONDS - START))s in all"
[ $FAILED = 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL"
[ $FAILED = 0 ]
