#!/bin/sh
# Builds the Debian package of Jawas (jawas_VERSION_ARCH.deb) with
# dpkg-deb alone: install.sh stages the tree (the same layout as an
# install under /usr), this script adds the control files, compresses the
# manual pages, writes the copyright file, and checks the result with
# lintian when it is installed.
#
#   packaging/deb.sh [--no-build] [--bin-dir DIR] [--out DIR]
#
# Why not cargo-deb: install.sh already knows where every file goes (man
# pages, completions, units, examples); describing the same layout again
# in Cargo.toml metadata would be a second list to keep in step.
set -eu
cd "$(dirname "$0")/.."
build=--build
bin_dir=target/release
out=target/debian
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) build=--no-build; shift ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "deb.sh: error: unknown argument '$1'" >&2; exit 100 ;;
    esac
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/jawas-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT

if [ "$build" = --build ]; then
    cargo build --release --workspace
fi
./install.sh --no-build --bin-dir "$bin_dir" --prefix /usr --confdir /etc/jawas --destdir "$stage" >/dev/null

# Debian's places: units under /lib (bookworm), docs with a copyright file
# and a compressed changelog, man pages compressed.
mkdir -p "$stage/lib/systemd/system"
mv "$stage/usr/lib/systemd/system/"* "$stage/lib/systemd/system/"
rm -rf "$stage/usr/lib/systemd"
rmdir "$stage/usr/lib" 2>/dev/null || true
find "$stage/usr/share/man" -type f -exec gzip -9n {} +
rm -f "$stage/usr/share/doc/jawas/LICENSE"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: jawas"
    echo
    echo "Files: *"
    echo "Copyright: The Jawas developers"
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' LICENSE
} >"$stage/usr/share/doc/jawas/copyright"
printf 'jawas (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- Jawas developers <jawas@example.org>  %s\n' \
    "$version" "$version" "$(date -R -u -d @0)" | gzip -9n >"$stage/usr/share/doc/jawas/changelog.gz"
# Debian ships stripped binaries (release builds keep their symbols for
# perf and backtraces; the package does not).
for b in "$stage"/usr/bin/*; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$b"
done
install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/jawas"
# The example blog's cache, should a test have made one, is not shipped.
find "$stage" -name .jawas-cache -prune -exec rm -rf {} +

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    packaging/debian/control >"$stage/DEBIAN/control"
cp packaging/debian/conffiles "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/jawas_${version}_${arch}.deb"
fakeroot dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null 2>&1 ||
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
if command -v lintian >/dev/null 2>&1; then
    lintian "$deb" >&2 || true
fi
