//go:build tools

// Package tools pins the node binaries keyguard's node suite runs: kubelet, kube-scheduler and
// kube-controller-manager from k8s.io/kubernetes, at the release tests/e2e/k8s builds kube-apiserver from.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
