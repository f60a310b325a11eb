// Command etcd is etcd v3's server entry point (what etcd's own server/main.go does), built
// from labkit's etcd wrapper module: go.etcd.io/etcd/server/v3's go.mod replaces its sibling
// modules with ../ paths, so `go install go.etcd.io/etcd/server/v3@VERSION` cannot work.  The
// version is pinned in labkit/kube/versions.py (docs/VERSIONS.md); go.mod follows it through
// `python -m labkit.kube.build --sync`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
