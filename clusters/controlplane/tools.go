//go:build tools

// Package tools pins the Kubernetes commands this module builds, so `go mod tidy`
// keeps their dependencies: kube-apiserver, kube-controller-manager and kube-scheduler.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
