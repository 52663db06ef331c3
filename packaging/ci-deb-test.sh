#!/bin/bash
# Build the camera-service .deb, inspect it, lint it, install it on this machine, check what the maintainer
# scripts did, then remove and purge it and check what is left. Needs root (dpkg -i, adduser) and a Debian-like
# system; systemd need not be running (the maintainer scripts then only create the enablement symlinks).
#
# Usage: packaging/ci-deb-test.sh            (from anywhere; builds with `cargo deb`)
#        DEB=path/to/x.deb packaging/ci-deb-test.sh   (test an existing package, skip the build)
#        DEB=target/aarch64-unknown-linux-gnu/debian/camera-service_<v>_arm64.deb ARCH=arm64 packaging/ci-deb-test.sh
#            a package for another architecture (scripts/build-arm.sh): checks its Architecture, the binary's ELF
#            machine, the shared-library Depends, sizes, contents and lintian; it cannot be installed here, so the
#            install/remove/purge part is skipped. Needs no root.
#
# Limits checked: stripped release binary <= 4 MB, .deb <= 2 MB (decimal megabytes); lintian without errors;
# `systemd-analyze verify` on the installed unit and `systemd-analyze security --offline` exposure <= 3.0.
set -euo pipefail

cd "$(dirname "$0")/.."

PKG=camera-service
UNIT=/usr/lib/systemd/system/camera-service.service
DATA=/var/lib/camera-service
MAX_BIN=4000000
MAX_DEB=2000000

step() { printf '\n=== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then printf 'ok   %s\n' "$what"; else fail "$what"; fi
}
# owner:group and octal mode of a path, e.g. "camera-service:camera-service 2775"
perms() { stat -c '%U:%G %a' "$1"; }
expect_perms() { # expect_perms PATH "USER:GROUP MODE"
    local got
    got=$(perms "$1")
    [ "$got" = "$2" ] || fail "$1: expected '$2', got '$got'"
    printf 'ok   %s is %s\n' "$1" "$2"
}

HOST_ARCH=$(dpkg --print-architecture)
ARCH=${ARCH:-$HOST_ARCH}
INSTALL=1
[ "$ARCH" = "$HOST_ARCH" ] || INSTALL=0
[ $INSTALL = 0 ] || [ "$(id -u)" = 0 ] || fail "run as root (dpkg -i and adduser need it)"

step "tools"
missing=()
command -v lintian >/dev/null || missing+=(lintian)
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v readelf >/dev/null || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "missing tools: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
cargo deb --version

# A leftover installation from an earlier, interrupted run would make the checks below meaningless.
if [ $INSTALL = 1 ] && dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    step "purging a previous installation"
    dpkg --purge "$PKG"
fi

if [ -z "${DEB:-}" ]; then
    [ $INSTALL = 1 ] || fail "set DEB to the $ARCH package (scripts/build-arm.sh builds it)"
    step "cargo deb"
    DEB=$(cargo deb | tail -n 1)
fi
[ -f "$DEB" ] || fail "no package at '$DEB'"
echo "package: $DEB"

step "sizes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$DEB" "$work/root"
bin="$work/root/usr/bin/camera-service"
bin_size=$(stat -c %s "$bin")
deb_size=$(stat -c %s "$DEB")
printf 'binary: %d bytes (%.2f MB, limit 4 MB)\n' "$bin_size" "$(echo "$bin_size / 1000000" | bc -l)"
printf '.deb:   %d bytes (%.2f MB, limit 2 MB)\n' "$deb_size" "$(echo "$deb_size / 1000000" | bc -l)"
check "binary <= 4 MB" test "$bin_size" -le "$MAX_BIN"
check ".deb <= 2 MB" test "$deb_size" -le "$MAX_DEB"
check "binary is stripped (no .symtab)" bash -c "! readelf -S '$bin' | grep -q '\.symtab'"
# ELF machine as readelf names it, per Debian architecture.
declare -A MACHINE=([amd64]="Advanced Micro Devices X86-64" [arm64]="AArch64" [armhf]="ARM")
machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
echo "ELF machine: $machine"
check "binary is built for $ARCH" test "$machine" = "${MACHINE[$ARCH]:-?}"

step "dpkg-deb -I"
dpkg-deb -I "$DEB"
control=$(dpkg-deb -f "$DEB")
check "Depends names adduser and ffmpeg" bash -c "grep -Eq '^Depends:.*adduser' <<<'$control' && grep -Eq '^Depends:.*ffmpeg' <<<'$control'"
check "Recommends mediamtx" grep -Eq '^Recommends:.*mediamtx' <<<"$control"
check "Architecture: $ARCH" grep -qx "Architecture: $ARCH" <<<"$control"
# The shared libraries the binary links (libc, libgcc_s) must come from dpkg-shlibdeps for this architecture, with
# a version: glibc 2.34 or newer is what the binaries need (they run on Debian 12 / bookworm and later).
check "Depends has libc6 (>= 2.x) from dpkg-shlibdeps" grep -Eq '^Depends:.*libc6 \(>= 2\.[0-9]+\)' <<<"$control"
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "NEEDED: $needed"
if grep -q libgcc_s <<<"$needed"; then
    check "Depends has libgcc-s1 (the binary links libgcc_s)" grep -Eq '^Depends:.*libgcc-s1' <<<"$control"
fi
dpkg-deb -e "$DEB" "$work/control"
check "conffiles lists the config" grep -qx /etc/camera-service/config.yaml "$work/control/conffiles"
for script in postinst prerm postrm; do
    check "$script is present and executable" test -x "$work/control/$script"
done
check "postinst handles the unit via deb-systemd-helper" grep -q 'deb-systemd-helper' "$work/control/postinst"

step "dpkg-deb -c"
dpkg-deb -c "$DEB" | tee "$work/contents"
for path in ./usr/bin/camera-service ./etc/camera-service/config.yaml "./usr/lib/systemd/system/camera-service.service" \
    ./usr/share/doc/camera-service/copyright ./usr/share/doc/camera-service/changelog.Debian.gz \
    ./usr/share/doc/camera-service/examples/mediamtx.yml ./usr/share/doc/camera-service/examples/mediamtx.service \
    ./usr/share/doc/camera-service/api.md ./usr/share/man/man1/camera-service.1.gz \
    ./usr/lib/tmpfiles.d/camera-service.conf; do
    check "contains $path" grep -q " $path\$" "$work/contents"
done
check "the MediaMTX unit is only an example (not installed as a unit)" \
    bash -c "! grep -q 'systemd/system/mediamtx' '$work/contents'"

step "lintian"
# lintian exits non-zero on errors (its default --fail-on); warnings are printed and allowed.
lintian --allow-root --fail-on error --display-level '>=warning' "$DEB"
echo "ok   lintian: no errors"

if [ $INSTALL = 0 ]; then
    printf '\nPASS: %s (binary %d bytes, .deb %d bytes; not installed: %s package on %s)\n' \
        "$(basename "$DEB")" "$bin_size" "$deb_size" "$ARCH" "$HOST_ARCH"
    exit 0
fi

step "dependencies"
need=()
for dep in adduser ffmpeg; do
    dpkg-query -W -f='${db:Status-Status}' "$dep" 2>/dev/null | grep -qx installed || need+=("$dep")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

step "dpkg -i (systemd running: $([ -d /run/systemd/system ] && echo yes || echo no))"
if ! dpkg -i "$DEB"; then
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y
fi
check "package is installed" bash -c "dpkg-query -W -f='\${db:Status-Status}' $PKG | grep -qx installed"

step "user, groups, directories"
check "system user exists" getent passwd camera-service
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd camera-service)
check "uid $uid is a system uid (< 1000)" test "$uid" -lt 1000
check "home is $DATA" test "$home" = "$DATA"
check "login shell $shell is disabled" bash -c "case '$shell' in */nologin|*/false) true;; *) false;; esac"
check "group camera-service exists" getent group camera-service
check "member of video" bash -c "id -nG camera-service | tr ' ' '\n' | grep -qx video"
check "primary group camera-service" test "$(id -gn camera-service)" = camera-service
expect_perms "$DATA" "camera-service:camera-service 750"
expect_perms "$DATA/recordings" "camera-service:camera-service 2775"
expect_perms "$DATA/snapshots" "camera-service:camera-service 750"
expect_perms "$DATA/state" "camera-service:camera-service 750"
if command -v systemd-tmpfiles >/dev/null; then
    expect_perms /run/camera-service/live "camera-service:camera-service 2770"
fi

step "conffile and configuration"
check "dpkg records the conffile" bash -c "dpkg-query -W -f='\${Conffiles}' $PKG | grep -q '/etc/camera-service/config.yaml'"
expect_perms /etc/camera-service/config.yaml "root:root 644"
effective=$(runuser -u camera-service -- /usr/bin/camera-service --check-config --strict-config \
    --config /etc/camera-service/config.yaml)
echo "$effective" | head -n 20
check "config loads (strict) and keeps recordings under $DATA" grep -q "recordings_path: $DATA/recordings" <<<"$effective"
check "state_dir under $DATA" grep -q "state_dir: $DATA/state" <<<"$effective"
check "live frames on tmpfs" grep -q "live_frames_path: /run/camera-service/live" <<<"$effective"
check "binary runs: --version" /usr/bin/camera-service --version

step "token and API key as the service user (docs/deployment.md section 4)"
as_service() { runuser -u camera-service -- /usr/bin/camera-service "$@" --config /etc/camera-service/config.yaml; }
token=$(as_service token --role admin)
check "token is a JWT (three dot-separated parts)" grep -Eq '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' <<<"$token"
expect_perms "$DATA/state/jwt_secret" "camera-service:camera-service 600"
key=$(as_service api-key create --role operator --name ci 2>/dev/null)
check "API key printed" test -n "$key"
check "only the hash is stored" bash -c "grep -q 'sha256:' '$DATA/state/api_keys.json' && ! grep -qF '$key' '$DATA/state/api_keys.json'"
check "key file belongs to the service user" test "$(stat -c %U "$DATA/state/api_keys.json")" = camera-service

step "systemd unit"
( cd / && systemd-analyze verify "$UNIT" )
echo "ok   systemd-analyze verify $UNIT"
( cd / && systemd-analyze security --offline=true --threshold=30 "$UNIT" ) | tail -n 1
echo "ok   exposure <= 3.0"
check "unit enabled (multi-user.target.wants symlink)" \
    test -L /etc/systemd/system/multi-user.target.wants/camera-service.service

step "reinstall over a modified conffile (upgrade path)"
echo "# local edit" >> /etc/camera-service/config.yaml
touch "$DATA/recordings/keep-me.mp4"
dpkg -i --force-confold "$DEB"
check "local conffile edit kept" grep -qx '# local edit' /etc/camera-service/config.yaml
check "recordings kept" test -f "$DATA/recordings/keep-me.mp4"
expect_perms "$DATA/recordings" "camera-service:camera-service 2775"

step "dpkg -r keeps data, user and conffile"
dpkg -r "$PKG"
check "binary removed" test ! -e /usr/bin/camera-service
check "unit removed" test ! -e "$UNIT"
check "recordings kept" test -f "$DATA/recordings/keep-me.mp4"
check "user kept" getent passwd camera-service
check "conffile kept" test -f /etc/camera-service/config.yaml
check "package in state config-files" \
    bash -c "dpkg-query -W -f='\${db:Status-Status}' $PKG | grep -qx config-files"

step "dpkg --purge removes everything"
dpkg --purge "$PKG"
check "data directory gone" test ! -e "$DATA"
check "live frames folder gone" test ! -e /run/camera-service
check "conffile gone" test ! -e /etc/camera-service/config.yaml
check "user gone" bash -c "! getent passwd camera-service"
check "group gone" bash -c "! getent group camera-service"
check "enablement symlink gone" test ! -e /etc/systemd/system/multi-user.target.wants/camera-service.service
check "package unknown to dpkg" \
    bash -c "! dpkg-query -W -f='\${db:Status-Status}' $PKG 2>/dev/null | grep -qv not-installed"

printf '\nPASS: %s (binary %d bytes, .deb %d bytes)\n' "$(basename "$DEB")" "$bin_size" "$deb_size"
