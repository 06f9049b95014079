//go:build tools

// Package tools pins the Kubernetes and etcd binaries the end-to-end suite runs: kube-apiserver and kubectl from
// k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3 (whose root package is etcd's main), and etcd's own client
// etcdctl, which reads the raw bytes kube-apiserver stores (the encryption-at-rest proof).
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
