#!/bin/bash
# Cross-build camera-service for 64-bit ARM (arm64: Raspberry Pi 3/4/5 with a 64-bit OS, most SBCs) and 32-bit
# ARM hard-float (armhf = armv7: Raspberry Pi 2 and later with a 32-bit OS) on a Debian 12 (or later) x86_64 host,
# and package each as a .deb. docs/deployment.md ("Building for ARM") explains it; .ci/run runs it.
#
# Usage: scripts/build-arm.sh [--no-deb] [arm64|armhf ...]       (default: both)
#   --no-deb          build the release binaries only
#   SKIP_SETUP=1      the apt packages below are already installed: do not check or install them
#   RUST_ARM=rustup   use rustup's targets (`rustup target add <triple>` done beforehand) instead of Debian's
#   RUST_ARM=debian   use Debian's rustc-web compiler and standard libraries (downloaded, cached)
#                     default: rustup when every wanted target is installed there, else debian
#   CAMERA_SERVICE_RUST_REFRESH=1   look for a newer rustc-web than the cached one
#
# Rust for the target, without downloading from rustup (our CI machines cannot reach it):
#   Debian 12's security suite ships `rustc-web` (a recent stable rustc, for building Firefox/Chromium) with its
#   standard library `libstd-rust-web-dev` for every Debian architecture. The script downloads, with a private
#   apt state (its own lists and cache under the cache directory, reading the machine's apt sources, the
#   architectures amd64, arm64 and armhf enabled only for itself: no `dpkg --add-architecture`, nothing
#   installed), these packages:
#     rustc-web:amd64, libstd-rust-web-<ver>:amd64 (librustc_driver), libllvm<N>:amd64   -> the compiler
#     libstd-rust-web-dev:amd64 (the host's std, for build scripts and proc-macros)
#     libstd-rust-web-dev:arm64, libstd-rust-web-dev:armhf   (usr/lib/rustlib/<triple>/lib/*.rlib)
#   and unpacks them into one directory, ${XDG_CACHE_HOME:-~/.cache}/camera-service/rustc-web/<version>/, which is
#   then a complete rustc sysroot (rustc finds it from its own path; it needs LD_LIBRARY_PATH only for its own
#   librustc_driver and libLLVM, set by a small wrapper script). Cargo is rustup's; RUSTC points at the wrapper.
#   rustc-web is NOT installed: its /usr/bin/rustc would replace rustup's. The runtime libraries libLLVM needs
#   (libz3, libedit, ...) are ordinary Debian libraries and are installed from the packages' Depends when missing.
#   A second run finds the cached sysroot and downloads nothing.
#
# The rest, from Debian's archive (installed with apt-get when missing):
#   gcc-aarch64-linux-gnu   libc6-dev-arm64-cross   -> linker and C compiler, target libc in /usr/aarch64-linux-gnu
#   gcc-arm-linux-gnueabihf libc6-dev-armhf-cross   -> the same for /usr/arm-linux-gnueabihf
#   libclang-dev: bindgen (the `v4l` crate's v4l2-sys-mit) generates the V4L2 bindings at build time. It must read
#     the *target's* headers, or struct layouts come out for x86_64: BINDGEN_EXTRA_CLANG_ARGS_<triple> gives it
#     --sysroot=/usr/<gnu-triple> -I/usr/<gnu-triple>/include (bindgen passes --target itself).
#   cargo-deb (cargo install cargo-deb) and dpkg-dev: the .deb, with Depends computed by dpkg-shlibdeps.
#
# Results: target/<triple>/release/camera-service and target/<triple>/debian/camera-service_<version>_<arch>.deb.
# The binaries need glibc >= 2.34 (Debian 12 / Raspberry Pi OS bookworm or newer).
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian arch -> Rust target triple, GNU triple (cross toolchain prefix and sysroot under /usr).
declare -A RUST_TRIPLE=([arm64]=aarch64-unknown-linux-gnu [armhf]=armv7-unknown-linux-gnueabihf)
declare -A GNU_TRIPLE=([arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)

make_deb=1
arches=()
for a in "$@"; do
    case $a in
        --no-deb) make_deb=0 ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) arches+=("$a") ;;
    esac
done
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)
for arch in "${arches[@]}"; do
    [ -n "${RUST_TRIPLE[$arch]:-}" ] || { echo "unknown architecture '$arch' (use arm64 or armhf)" >&2; exit 2; }
done

SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/camera-service
say() { printf '=== %s\n' "$*"; }

# apt-get install the packages that are not installed yet.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

setup() {
    local packages=(libclang-dev dpkg-dev)
    for arch in "${arches[@]}"; do
        packages+=("gcc-${GNU_TRIPLE[$arch]}" "libc6-dev-${arch}-cross" "binutils-${GNU_TRIPLE[$arch]}")
    done
    apt_install "${packages[@]}"
    if [ $make_deb = 1 ] && ! cargo deb --version >/dev/null 2>&1; then
        cargo install cargo-deb --locked
    fi
}

# ---- Debian's rustc-web as a private sysroot ---------------------------------------------------------------------

# apt-get/apt-cache with a private state: lists, package cache and an empty dpkg status under $CACHE/apt, the
# machine's sources (sources.list and sources.list.d), and the three architectures enabled for this state only.
APT_OPTS=()
private_apt_init() {
    local s=$CACHE/apt
    mkdir -p "$s/lists/partial" "$s/archives/partial" "$s/preferences.d"
    : >"$s/status"
    APT_OPTS=(
        -o "Dir::State=$s" -o "Dir::State::Lists=$s/lists" -o "Dir::State::status=$s/status"
        -o "Dir::Cache=$s" -o "Dir::Cache::archives=$s/archives"
        -o "Dir::Etc::SourceList=/etc/apt/sources.list" -o "Dir::Etc::SourceParts=/etc/apt/sources.list.d"
        -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$s/preferences.d"
        -o "APT::Architecture=amd64" -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64"
        -o "APT::Architectures::=armhf" -o "Debug::NoLocking=1"
    )
    # As root apt downloads as user _apt, which may not write to this directory; it is ours, so download as us.
    [ "$(id -u)" != 0 ] || APT_OPTS+=(-o "APT::Sandbox::User=root")
}

# Package names in a .deb's Depends (first alternative, no version, no :any).
deb_depends() {
    dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/ //g' | grep -v '^$'
}

# Download rustc-web and the standard libraries into $CACHE/rustc-web/<version> (unless cached) and print the path.
rustc_web_sysroot() {
    local link=$CACHE/rustc-web/current
    if [ -z "${CAMERA_SERVICE_RUST_REFRESH:-}" ] && [ -f "$link/.complete" ]; then
        readlink -f "$link"
        return
    fi
    private_apt_init
    say "apt-get update (private state in $CACHE/apt)" >&2
    apt-get "${APT_OPTS[@]}" update -qq >&2
    local version
    version=$(apt-cache "${APT_OPTS[@]}" policy rustc-web:amd64 | sed -n 's/^ *Candidate: //p')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        echo "rustc-web is not in the apt sources: add Debian 12's security suite (bookworm-security)" >&2
        exit 1
    fi
    local dir=$CACHE/rustc-web/$version
    if [ ! -f "$dir/.complete" ]; then
        say "downloading rustc-web $version and its standard libraries for amd64, arm64, armhf" >&2
        local dl=$CACHE/rustc-web/download
        rm -rf "$dl" "$dir"
        mkdir -p "$dl" "$dir"
        (
            cd "$dl"
            apt-get "${APT_OPTS[@]}" download -qq "rustc-web:amd64=$version" "libstd-rust-web-dev:amd64=$version" \
                "libstd-rust-web-dev:arm64=$version" "libstd-rust-web-dev:armhf=$version" >&2
            # The compiler's own shared libraries: libstd-rust-web-<X.Y> (librustc_driver), then the libllvm<N>
            # it links to.
            local lib
            lib=$(deb_depends libstd-rust-web-dev_*_amd64.deb | grep '^libstd-rust-web-[0-9]' | head -n 1)
            apt-get "${APT_OPTS[@]}" download -qq "$lib:amd64" >&2
            lib=$(deb_depends "$lib"_*_amd64.deb | grep '^libllvm[0-9]' | head -n 1)
            apt-get "${APT_OPTS[@]}" download -qq "$lib:amd64" >&2
        )
        local deb
        for deb in "$dl"/*.deb; do
            dpkg-deb -x "$deb" "$dir"
        done
        # What the compiler's libraries need from the system (libLLVM: libz3, libedit, libxml2, ...). Not the
        # packages just unpacked, and not the ones rustc-web wants only for linking host programs (gcc is here).
        local needs=() p
        for deb in "$dl"/rustc-web_*.deb "$dl"/libstd-rust-web-[0-9]*.deb "$dl"/libllvm*.deb; do
            for p in $(deb_depends "$deb"); do
                case $p in libstd-rust-web* | libllvm* | gcc | libc-dev | binutils) ;; *) needs+=("$p") ;; esac
            done
        done
        apt_install "${needs[@]}" >&2
        rm -rf "$dir/usr/share/doc" "$dir/usr/share/man" "$dl"
        cat >"$dir/rustc" <<EOF
#!/bin/sh
# Debian's rustc-web from the sysroot beside this script; LD_LIBRARY_PATH for its librustc_driver and libLLVM.
LD_LIBRARY_PATH="$dir/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dir/usr/bin/rustc" "\$@"
EOF
        chmod +x "$dir/rustc"
        "$dir/rustc" -vV >&2
        touch "$dir/.complete"
    fi
    ln -sfn "$version" "$link"
    echo "$dir"
}

# ---- Depends for the target --------------------------------------------------------------------------------------

# dpkg-shlibdeps computes Depends from the symbols files of the packages that ship the linked libraries. The cross
# libraries (libc6-arm64-cross, ...) carry none that fit: they name the cross packages and the newest glibc. So the
# real libc6 and libgcc-s1 of the target architecture are downloaded (private apt state) and described in a small
# dpkg database of their own, which dpkg-shlibdeps reads with --admindir: their symbols files, and their libraries
# at the paths of the cross libraries. Prints the database's path.
target_dpkg_db() {
    local arch=$1 gnu=${GNU_TRIPLE[$1]}
    local db=$CACHE/dpkg-$arch
    if [ -z "${CAMERA_SERVICE_RUST_REFRESH:-}" ] && [ -f "$db/info/format" ]; then
        echo "$db"
        return
    fi
    private_apt_init
    if [ -z "$(ls "$CACHE/apt/lists" 2>/dev/null | grep Packages)" ]; then
        apt-get "${APT_OPTS[@]}" update -qq >&2
    fi
    local dl=$CACHE/dpkg-$arch.download
    rm -rf "$dl" "$db"
    mkdir -p "$dl" "$db/info" "$db/updates"
    (cd "$dl" && apt-get "${APT_OPTS[@]}" download -qq "libc6:$arch" "libgcc-s1:$arch" >&2)
    : >"$db/status"
    local deb pkg
    for deb in "$dl"/*.deb; do
        pkg=$(dpkg-deb -f "$deb" Package)
        dpkg-deb -e "$deb" "$dl/$pkg"
        { cat "$dl/$pkg/control"; echo "Status: install ok installed"; echo; } >>"$db/status"
        cp "$dl/$pkg/symbols" "$db/info/$pkg:$arch.symbols"
        cp "$dl/$pkg/shlibs" "$db/info/$pkg:$arch.shlibs"
        dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E "/lib/$gnu/[^/]+\.so[.0-9]*$" | sed "s|.*/|/usr/$gnu/lib/|" \
            >"$db/info/$pkg:$arch.list"
    done
    echo 1 >"$db/info/format"
    rm -rf "$dl"
    echo "$db"
}

# "shlibs:Depends" of a binary for $arch, e.g. "libc6 (>= 2.34), libgcc-s1 (>= 4.2)".
shlib_depends() {
    local arch=$1 bin=$2 gnu=${GNU_TRIPLE[$1]} db work
    db=$(target_dpkg_db "$arch")
    work=$(mktemp -d)
    mkdir -p "$work/debian/camera-service/usr/bin"
    printf 'Source: camera-service\n\nPackage: camera-service\nArchitecture: any\n' >"$work/debian/control"
    cp "$bin" "$work/debian/camera-service/usr/bin/"
    (cd "$work" && dpkg-shlibdeps --admindir="$db" -O "-l/usr/$gnu/lib" debian/camera-service/usr/bin/camera-service) |
        sed -n 's/^shlibs:Depends=//p'
    rm -rf "$work"
}

# Replace what cargo-deb put into Depends for the shared libraries (it has only the cross packages' shlibs files to
# go by) with the Depends computed from the target's own packages.
fix_depends() {
    local arch=$1 deb=$2 bin=$3 shlibs fixed work
    shlibs=$(shlib_depends "$arch" "$bin")
    [ -n "$shlibs" ] || { echo "dpkg-shlibdeps found no Depends for $bin" >&2; exit 1; }
    fixed=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//' | grep -Ev '^(libc6|libgcc)' | paste -sd, |
        sed 's/,/, /g')
    fixed="${fixed:+$fixed, }$shlibs"
    work=$(mktemp -d)
    dpkg-deb -R "$deb" "$work/pkg"
    sed -i "s/^Depends: .*/Depends: $fixed/" "$work/pkg/DEBIAN/control"
    dpkg-deb --root-owner-group -Zxz -b "$work/pkg" "$deb" >/dev/null
    rm -rf "$work"
}

# ---- build -----------------------------------------------------------------------------------------------------

build() {
    local arch=$1
    local rust=${RUST_TRIPLE[$arch]} gnu=${GNU_TRIPLE[$arch]}
    local env_triple=${rust//-/_}              # aarch64_unknown_linux_gnu
    local upper=${env_triple^^}                # AARCH64_UNKNOWN_LINUX_GNU
    say "$arch ($rust) with $gnu-gcc, sysroot /usr/$gnu, $("${RUSTC:-rustc}" --version)"
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
    local bin="target/$rust/release/camera-service"
    if [ $make_deb = 1 ]; then
        local deb
        rm -f "target/$rust/debian/"*.deb
        deb=$(cargo deb --target "$rust" --output "target/$rust/debian/" | tail -n 1)
        fix_depends "$arch" "$deb" "$bin"
        echo "built $deb"
        dpkg-deb -f "$deb" Package Version Architecture Depends
        printf '%s: binary %d bytes, .deb %d bytes\n' "$arch" "$(stat -c %s "$bin")" "$(stat -c %s "$deb")"
    else
        cargo build --release --target "$rust"
        printf '%s: binary %d bytes\n' "$arch" "$(stat -c %s "$bin")"
    fi
    # The ELF header must name the target machine, not the host.
    readelf -h "$bin" | grep -E 'Class|Machine'
}

[ -n "${SKIP_SETUP:-}" ] || setup

mode=${RUST_ARM:-}
if [ -z "$mode" ]; then
    mode=rustup
    for arch in "${arches[@]}"; do
        rustup target list --installed 2>/dev/null | grep -qx "${RUST_TRIPLE[$arch]}" || mode=debian
    done
fi
case $mode in
    rustup) unset RUSTC ;;
    debian) RUSTC=$(rustc_web_sysroot)/rustc; export RUSTC ;;
    *) echo "RUST_ARM must be rustup or debian, not '$mode'" >&2; exit 2 ;;
esac

for arch in "${arches[@]}"; do
    build "$arch"
done
