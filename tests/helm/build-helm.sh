#!/usr/bin/env bash
# Builds the real Helm the chart tests run (`helm lint`, `helm template`, and `helm install` in the end-to-end suite),
# from the Go module proxy: `go install` of a pinned release, its module graph checked against the Go checksum
# database. Cached outside the repository, keyed by the hash of this script (which holds the version), apart from the
# Kubernetes binaries of build-k8s.sh, so neither build forces the other. Prints the bin directory on its last line.
set -euo pipefail
version=v4.3.2
key="$(sha256sum "$0" | cut -c1-16)"
bin="${KEYGUARD_CACHE:-$HOME/.cache/keyguard}/helm/$key/bin"
if [[ -x "$bin/helm" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
start=$(date +%s)
echo "building helm $version into $bin (cold build: a few minutes)" >&2
# Stamp the release into the binary, as Helm's own Makefile does.
GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 GOBIN="$bin" \
  go install -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version" "helm.sh/helm/v4/cmd/helm@$version"
echo "built in $(( $(date +%s) - start )) s" >&2
"$bin/helm" version --short >&2
echo "$bin"
