#!/usr/bin/env bash
# Builds the real kube-apiserver, kubectl, etcd and etcdctl the end-to-end suite runs, from the Go module proxy,
# pinned by tests/e2e/k8s/go.mod and go.sum. Binaries are cached outside the repository, keyed by the hash of those
# files, so a second run costs nothing. Prints the bin directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/k8s"
key="$(cat "$0" "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" | sha256sum | cut -c1-16)"
cache="${KEYGUARD_CACHE:-$HOME/.cache/keyguard}/k8s/$key"
bin="$cache/bin"
if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/etcdctl" && -x "$bin/kubectl" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
start=$(date +%s)
echo "building kube-apiserver, kubectl, etcd and etcdctl into $bin (cold build: a few minutes)" >&2
cd "$mod"
export GOFLAGS="-trimpath -mod=readonly -buildvcs=false" CGO_ENABLED=0
# Stamp the release into the binaries, as Kubernetes' own build does (hack/lib/version.sh).
version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' go.mod)"
minor="$(echo "$version" | cut -d. -f2)"
pkg=k8s.io/component-base/version
stamp="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
stamp="$stamp -X k8s.io/client-go/pkg/version.gitVersion=$version"
go build -ldflags="-s -w $stamp" -o "$bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
go build -ldflags='-s -w' -o "$bin/etcd" go.etcd.io/etcd/server/v3
go build -ldflags='-s -w' -o "$bin/etcdctl" go.etcd.io/etcd/etcdctl/v3
echo "built in $(( $(date +%s) - start )) s" >&2
"$bin/kube-apiserver" --version >&2
"$bin/etcd" --version | head -1 >&2
echo "$bin"
