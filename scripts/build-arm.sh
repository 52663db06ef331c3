#!/bin/bash
# Cross-build camera-service .debs for 64-bit ARM (arm64: Raspberry Pi 3/4/5 with a 64-bit OS, most SBCs) and
# 32-bit ARM hard-float (armhf: Raspberry Pi OS 32-bit, older boards) on a Debian/Ubuntu x86_64 host.
# Not part of CI (it installs toolchains and takes a while); see docs/deployment.md "Building for ARM".
#
# Usage: scripts/build-arm.sh [arm64|armhf ...]     (default: both)
#        SKIP_SETUP=1 scripts/build-arm.sh          (toolchains already installed; no apt/rustup)
#
# What it needs, and why:
#   * Rust standard library for the target:   rustup target add <triple>   (from static.rust-lang.org)
#   * A cross C toolchain as linker, and the target's C library to link against (Debian packages):
#       gcc-aarch64-linux-gnu     libc6-dev-arm64-cross   -> /usr/aarch64-linux-gnu
#       gcc-arm-linux-gnueabihf   libc6-dev-armhf-cross   -> /usr/arm-linux-gnueabihf
#   * bindgen: the `v4l` crate (through v4l2-sys-mit) generates its V4L2 bindings with libclang at build time.
#     libclang must read the *target's* headers, or struct layouts come out for x86_64. It gets
#     --sysroot=/usr/<gnu-triple> and -I/usr/<gnu-triple>/include through BINDGEN_EXTRA_CLANG_ARGS_<rust_triple>,
#     and --target through bindgen itself. (libclang-dev on the host: apt-get install libclang-dev.)
#   * cargo-deb maps the Rust triple to the Debian architecture, strips with the cross binutils and computes
#     Depends with dpkg-shlibdeps when the target's libc is known to dpkg; otherwise the $auto part falls
#     back to what cargo-deb can infer, and `adduser, ffmpeg` are always listed.
# The results land in target/<rust-triple>/debian/camera-service_<version>_<arch>.deb.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian arch -> Rust target triple, GNU triple (cross toolchain prefix and sysroot under /usr).
declare -A RUST_TRIPLE=([arm64]=aarch64-unknown-linux-gnu [armhf]=armv7-unknown-linux-gnueabihf)
declare -A GNU_TRIPLE=([arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)
for arch in "${arches[@]}"; do
    [ -n "${RUST_TRIPLE[$arch]:-}" ] || { echo "unknown architecture '$arch' (use arm64 or armhf)" >&2; exit 2; }
done

setup() {
    local packages=(libclang-dev binutils)
    for arch in "${arches[@]}"; do
        packages+=("gcc-${GNU_TRIPLE[$arch]}" "libc6-dev-${arch}-cross" "binutils-${GNU_TRIPLE[$arch]}")
    done
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    for arch in "${arches[@]}"; do
        rustup target add "${RUST_TRIPLE[$arch]}"
    done
    cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
}

build() {
    local arch=$1
    local rust=${RUST_TRIPLE[$arch]} gnu=${GNU_TRIPLE[$arch]}
    local env_triple=${rust//-/_}              # aarch64_unknown_linux_gnu
    local upper=${env_triple^^}                # AARCH64_UNKNOWN_LINUX_GNU
    echo "=== $arch ($rust) with $gnu-gcc, sysroot /usr/$gnu"
    # Linker for rustc; C compiler/archiver for any build script that compiles C.
    export "CARGO_TARGET_${upper}_LINKER=$gnu-gcc"
    export "CC_${env_triple}=$gnu-gcc"
    export "AR_${env_triple}=$gnu-ar"
    # bindgen (v4l2-sys-mit): parse the target's kernel and libc headers, not the host's.
    # (bindgen reads BINDGEN_EXTRA_CLANG_ARGS_<triple> with dashes or underscores; only the latter is a shell name.)
    export "BINDGEN_EXTRA_CLANG_ARGS_${env_triple}=--sysroot=/usr/$gnu -I/usr/$gnu/include"
    # cargo-deb strips with the target's binutils.
    export "CARGO_TARGET_${upper}_STRIP=$gnu-strip"
    export "CARGO_TARGET_${upper}_OBJCOPY=$gnu-objcopy"
    local deb
    deb=$(cargo deb --target "$rust" | tail -n 1)
    echo "built $deb"
    dpkg-deb -f "$deb" Package Version Architecture Depends
    local bin="target/$rust/release/camera-service"
    printf 'binary %s: %d bytes; .deb: %d bytes\n' "$bin" "$(stat -c %s "$bin")" "$(stat -c %s "$deb")"
    # The ELF header must name the target machine, not the host.
    readelf -h "$bin" | grep -E 'Class|Machine'
}

[ -n "${SKIP_SETUP:-}" ] || setup
for arch in "${arches[@]}"; do
    build "$arch"
done
