#!/bin/sh
# Installs Jawas under a prefix: every binary, the manual pages, shell
# completions, the systemd units, the documentation and the example
# configuration with what it serves.
#
#   ./install.sh                      # build, then install under /usr/local
#   ./install.sh --prefix /opt/jawas  # another prefix
#   ./install.sh --destdir pkg/       # stage into pkg/ (for packaging)
#   ./install.sh --no-build --bin-dir target/debug   # install what is built
#
# A shell script rather than a cargo xtask: it needs nothing but cargo,
# coreutils and sh, it is short enough to read before running it as root,
# and the Debian package build stages through it (--destdir).
#
# Layout under PREFIX: bin/ (jawasd, jawas-*), share/man/man{1,5,8}/,
# share/bash-completion/completions/jawasd, share/zsh/site-functions/_jawasd,
# share/fish/vendor_completions.d/jawasd.fish, share/doc/jawas/ (README,
# docs/), share/jawas/examples/ (etc/ and engines/examples/: the demo runs
# with `jawasd --config PREFIX/share/jawas/examples/etc/jawasd.toml`),
# lib/systemd/system/ (the units, ExecStart pointing at PREFIX/bin).
# CONFDIR (default /etc/jawas, or PREFIX/etc/jawas for a prefix other than
# /usr and /usr/local) gets jawasd.toml only if there is none yet.
set -eu
cd "$(dirname "$0")"

prefix=/usr/local
destdir=
build=yes
bin_dir=target/release
confdir=
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --confdir) confdir=$2; shift 2 ;;
        --confdir=*) confdir=${1#*=}; shift ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --bin-dir=*) bin_dir=${1#*=}; shift ;;
        --no-build) build=no; shift ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: error: unknown argument '$1' (see --help)" >&2; exit 100 ;;
    esac
done
case $prefix in
    /*) ;;
    *) echo "install.sh: error: --prefix must be an absolute path, not '$prefix'" >&2; exit 100 ;;
esac
if [ -z "$confdir" ]; then
    case $prefix in
        /usr|/usr/local) confdir=/etc/jawas ;;
        *) confdir=$prefix/etc/jawas ;;
    esac
fi

engines="jawas-builtin jawas-static jawas-cgi jawas-ws jawas-blog jawas-proxy"
if [ "$build" = yes ]; then
    cargo build --release --workspace
fi
for b in jawasd $engines; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "install.sh: error: $bin_dir/$b is missing; build first (cargo build --release --workspace)" >&2
        exit 100
    fi
done

root=$destdir$prefix
say() { printf '  %s\n' "$1"; }
echo "Installing Jawas into $root"
install -d "$root/bin" "$root/share/man/man1" "$root/share/man/man5" "$root/share/man/man8" \
    "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
    "$root/share/fish/vendor_completions.d" "$root/share/doc/jawas" \
    "$root/share/jawas/examples" "$root/lib/systemd/system"

for b in jawasd $engines; do
    install -m 0755 "$bin_dir/$b" "$root/bin/$b"
done
say "binaries: $root/bin/{jawasd,$(echo "$engines" | tr ' ' ',')}"

"$bin_dir/jawasd" man jawasd >"$root/share/man/man8/jawasd.8"
"$bin_dir/jawasd" man jawasd.toml >"$root/share/man/man5/jawasd.toml.5"
for e in $engines; do
    "$bin_dir/$e" --man-page >"$root/share/man/man1/$e.1"
done
say "manual pages: jawasd(8), jawasd.toml(5), one per engine (1)"

"$bin_dir/jawasd" completions bash >"$root/share/bash-completion/completions/jawasd"
"$bin_dir/jawasd" completions zsh >"$root/share/zsh/site-functions/_jawasd"
"$bin_dir/jawasd" completions fish >"$root/share/fish/vendor_completions.d/jawasd.fish"
say "completions: bash, zsh, fish"

cp -R README.md LICENSE docs "$root/share/doc/jawas/"
mkdir -p "$root/share/jawas/examples/engines"
cp -R etc "$root/share/jawas/examples/"
cp -R engines/examples "$root/share/jawas/examples/engines/"
rm -rf "$root/share/jawas/examples/etc/blog/.jawas-cache"
say "docs: $prefix/share/doc/jawas; examples: $prefix/share/jawas/examples"

for unit in jawasd.service jawasd.socket; do
    sed -e "s|/usr/local/bin/jawasd|$prefix/bin/jawasd|g" \
        -e "s|/etc/jawas/jawasd.toml|$confdir/jawasd.toml|g" \
        "etc/systemd/$unit" >"$root/lib/systemd/system/$unit"
done
say "systemd units: $prefix/lib/systemd/system/jawasd.{service,socket}"

install -d "$destdir$confdir"
if [ -e "$destdir$confdir/jawasd.toml" ]; then
    say "kept the existing $confdir/jawasd.toml"
else
    install -m 0644 etc/jawasd.conf.example "$destdir$confdir/jawasd.toml"
    say "configuration: $confdir/jawasd.toml (no service enabled; see the examples)"
fi
echo "Done. Try the demo: $prefix/bin/jawasd --config $prefix/share/jawas/examples/etc/jawasd.toml"
