#!/usr/bin/env bash
# Builds everything the node suite runs besides the control plane (tests/e2e/build-k8s.sh builds that), with no
# registry: kubelet, kube-scheduler and kube-controller-manager from the Go module proxy at the release of
# tests/e2e/k8s; SeaweedFS's `weed`, containerd 2.x (with its shim and ctr) and runc from their modules; the KMS v2
# plugin of tests/node/kms-plugin; the loopback CNI plugin, iptables, debootstrap, buildah, SoftHSM, libseccomp and the
# C toolchain (pause.c, cgo) from Debian's packages; and three OCI image archives built locally: the pause image from
# Kubernetes' own pause.c, a Debian bookworm Python base from debootstrap, keyguard's Dockerfile on that base, and a
# Flyte task image.
#
# Each artifact is cached under ~/.cache/keyguard/node/<name>/<key>, its key the hash of its inputs and of the shell
# function that builds it, so a warm run costs a few hashes. Prints one JSON object on its last line: the paths
# and image names the suite uses.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${KEYGUARD_CACHE:-$HOME/.cache/keyguard}/node"
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
CONTAINERD_VERSION=v2.4.2 # supports Kubernetes 1.37 (its RELEASES.md)
RUNC_VERSION=v1.5.2       # the runc that containerd release tests with (its script/setup/runc-version)
PAUSE_TAG=3.10.2 # the pause release whose pause.c the pinned k8s.io/kubernetes ships (build/pause/Makefile)
export BUILDAH_ISOLATION=chroot STORAGE_DRIVER=vfs
buildah_flags=(--root "$cache/buildah/storage" --runroot "$cache/buildah/run" --storage-driver vfs)

log() { echo "build-node: $*" >&2; }

# key FUNCTION FILE...: 16 hex digits over the function's own text and the named files.
key() {
  local fn="$1"
  shift
  { declare -f "$fn"; cat "$@"; } | sha256sum | cut -c1-16
}

# cached NAME KEY FUNCTION: runs FUNCTION with $out set to an empty directory unless NAME/KEY is already complete.
cached() {
  local name="$1" k="$2" fn="$3" start
  out="$cache/$name/$k"
  if [[ -f "$out/.complete" ]]; then
    touch "$out/.complete" # last used, for prune
    return 0
  fi
  rm -rf "$out"
  mkdir -p "$out"
  start=$(date +%s)
  log "building $name into $out"
  "$fn"
  log "$name built in $(($(date +%s) - start)) s"
  touch "$out/.complete"
}

# prune NAME: keeps the KEEP most recently used builds of NAME (each checkout with its own sources has one; an image
# archive is 100-250 MB), deletes the rest. A build still in progress (no .complete yet) is never touched.
KEEP=6
prune() {
  local name="$1" stale
  while IFS= read -r stale; do
    stale="${stale%/.complete}"
    log "pruning $name build ${stale##*/} (not used lately)"
    rm -rf "$stale"
  done < <(ls -1t "$cache/$name"/*/.complete 2>/dev/null | tail -n +$((KEEP + 1)))
}

debian_packages() {
  local wanted=(libseccomp-dev containernetworking-plugins iptables debootstrap buildah softhsm2 gcc libc6-dev)
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

build_kubernetes() {
  cd "$here/k8s"
  local version minor pkg stamp
  version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  minor="$(echo "$version" | cut -d. -f2)"
  pkg=k8s.io/component-base/version
  stamp="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=0 go build -ldflags="-s -w $stamp" -o "$out/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-controller-manager
}

# SeaweedFS's go.mod carries replace directives, so `go install module@version` refuses it: build inside the module.
build_seaweedfs() {
  local dir
  dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  cd "$dir"
  GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=0 go build -ldflags="-s -w" -o "$out/weed" ./weed
}

# go_module MODULE@VERSION: the module's directory in the module cache, downloaded through the proxy.
go_module() {
  GOFLAGS=-mod=mod go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

# containerd, its runc shim and ctr, built as its Makefile builds them, without the btrfs snapshotter (cgo headers).
build_containerd() {
  cd "$(go_module "github.com/containerd/containerd/v2@$CONTAINERD_VERSION")"
  local pkg=github.com/containerd/containerd/v2/version
  GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=0 go build -tags "no_btrfs urfave_cli_no_docs" \
    -ldflags="-s -w -X $pkg.Version=$CONTAINERD_VERSION -X $pkg.Package=github.com/containerd/containerd/v2" \
    -o "$out/" ./cmd/containerd ./cmd/containerd-shim-runc-v2 ./cmd/ctr
}

# runc with seccomp (cgo, libseccomp-dev) and without libpathrs (a Rust library Debian lacks; runc then uses its
# pure-Go path-safety code), as its Makefile builds it otherwise.
build_runc() {
  cd "$(go_module "github.com/opencontainers/runc@$RUNC_VERSION")"
  GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=1 go build -buildmode=pie \
    -tags "seccomp urfave_cli_no_docs" -ldflags="-s -w -X main.gitCommit=$RUNC_VERSION" -o "$out/runc" .
}

# The KMS v2 plugin over a PKCS#11 token (tests/node/test_kms_at_rest.py); cgo, for the PKCS#11 module it loads.
build_kms_plugin() {
  cd "$here/kms-plugin"
  GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=1 go build -ldflags="-s -w" -o "$out/kms-plugin" .
}

# Kubernetes' own pause.c from the pinned module, compiled static as build/pause/Makefile does.
build_pause() {
  local work="$out/context"
  mkdir -p "$work"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-keyguard" -o "$work/pause" "$pause_source"
  printf 'FROM scratch\nADD pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$work/Containerfile"
  image_build "$work" "$work/Containerfile" "$pause_image" "$out/image.tar"
  rm -rf "$work"
}

# A Debian bookworm root filesystem from Debian's packages with the interpreter the keyguard and task images need.
build_base() {
  local rootfs="$out/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$out/debootstrap.log" 2>&1 ||
    {
      tail -20 "$out/debootstrap.log" >&2
      return 1
    }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  local container
  container="$(buildah "${buildah_flags[@]}" from scratch)"
  buildah "${buildah_flags[@]}" copy --quiet "$container" "$rootfs" / >/dev/null
  buildah "${buildah_flags[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd python3 "$container"
  buildah "${buildah_flags[@]}" commit --quiet --rm "$container" "$base_image" >/dev/null
  rm -rf "$rootfs"
}

build_keyguard() {
  image_build "$repo" "$repo/Dockerfile" "$keyguard_image" "$out/image.tar" --build-arg "PYTHON_IMAGE=$base_image"
}

build_task() {
  image_build "$here/images/task" "$here/images/task/Containerfile" "$task_image" "$out/image.tar" \
    --build-arg "BASE=$base_image"
}

# image_build CONTEXT CONTAINERFILE NAME ARCHIVE [ARGS...]: buildah with vfs storage and chroot isolation (no
# daemon), never pulling, saved as an OCI archive that `ctr images import` reads.
image_build() {
  local context="$1" file="$2" name="$3" archive="$4"
  shift 4
  # The machine's own pip settings (an index mirror, a TLS-inspecting proxy's CA) reach pip inside the build
  # through read-only mounts, never the image.
  local mounts=()
  for setting in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
    if [[ -f "$setting" ]]; then mounts+=(-v "$setting:$setting:ro"); fi
  done
  buildah "${buildah_flags[@]}" bud --quiet --pull=never --isolation chroot --network host --layers=false \
    "${mounts[@]}" -f "$file" -t "$name" "$@" "$context" >&2
  buildah "${buildah_flags[@]}" push --quiet "$name" "oci-archive:$archive:$name" >&2
  # The archive is what the suite imports; vfs storage keeps a full copy per image, so only the base stays there.
  buildah "${buildah_flags[@]}" rmi "$name" >/dev/null
}

debian_packages

k8s_key="$(key build_kubernetes "$here/k8s/go.mod" "$here/k8s/go.sum" "$here/k8s/tools.go")"
cached kubernetes "$k8s_key" build_kubernetes
k8s_bin="$out"

weed_key="$(echo "$SEAWEEDFS_VERSION" | key build_seaweedfs -)"
cached seaweedfs "$weed_key" build_seaweedfs
weed="$out/weed"

containerd_key="$(echo "$CONTAINERD_VERSION" | key build_containerd - <(declare -f go_module))"
cached containerd "$containerd_key" build_containerd
containerd_bin="$out"

runc_key="$(echo "$RUNC_VERSION" | key build_runc - <(declare -f go_module))"
cached runc "$runc_key" build_runc
runc="$out/runc"

kms_key="$(key build_kms_plugin "$here/kms-plugin/go.mod" "$here/kms-plugin/go.sum" "$here/kms-plugin/main.go")"
cached kms-plugin "$kms_key" build_kms_plugin
kms_plugin="$out/kms-plugin"

version="$(cd "$here/k8s" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
pause_source="$(cd "$here/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
pause_key="$(echo "$PAUSE_TAG" | key build_pause - "$pause_source" <(declare -f image_build))"
pause_image="localhost/keyguard-node/pause:$PAUSE_TAG-$pause_key"
cached pause "$pause_key" build_pause
pause_archive="$out/image.tar"

base_key="$(key build_base /dev/null)"
base_image="localhost/keyguard-node/debian-python:bookworm-$base_key"
cached base "$base_key" build_base
# The base lives in buildah's storage only; rebuild it there if that storage was wiped.
if ! buildah "${buildah_flags[@]}" inspect --type image "$base_image" >/dev/null 2>&1; then
  rm -f "$cache/base/$base_key/.complete"
  cached base "$base_key" build_base
fi

# files_under DIR: every file below DIR in a stable order, NUL-separated (what an image's cache key covers).
files_under() { find "$1" -type f -not -path '*/__pycache__/*' -print0 | sort -z; }

mapfile -d '' -t webhook_files < <(files_under "$repo/webhook")
keyguard_sources=("$repo/Dockerfile" "$repo/pyproject.toml" "$repo/README.md" "${webhook_files[@]}")
keyguard_key="$(echo "$base_image" | key build_keyguard - "${keyguard_sources[@]}" <(declare -f image_build))"
keyguard_image="localhost/keyguard-node/keyguard:$keyguard_key"
cached keyguard "$keyguard_key" build_keyguard
keyguard_archive="$out/image.tar"
prune keyguard

mapfile -d '' -t task_sources < <(files_under "$here/images/task")
task_key="$(echo "$base_image" | key build_task - "${task_sources[@]}" <(declare -f image_build))"
task_image="localhost/keyguard-node/flyte-task:$task_key"
cached task "$task_key" build_task
task_archive="$out/image.tar"
prune task

python3 - "$k8s_bin" "$weed" "$version" "$SEAWEEDFS_VERSION" "$kms_plugin" \
  "$pause_image" "$pause_archive" "$keyguard_image" "$keyguard_archive" "$task_image" "$task_archive" \
  "$containerd_bin" "$runc" <<'EOF'
import json, sys

a = sys.argv[1:]
print(json.dumps({
    "k8s_bin": a[0], "weed": a[1], "kubernetes_version": a[2], "seaweedfs_version": a[3], "kms_plugin": a[4],
    "containerd_bin": a[11], "runc": a[12],
    "images": {
        "pause": {"name": a[5], "archive": a[6]},
        "keyguard": {"name": a[7], "archive": a[8]},
        "task": {"name": a[9], "archive": a[10]},
    },
}))
EOF
