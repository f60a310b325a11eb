// Command etcd is etcd v3.6's server entry point, built inside labkit's control-plane
// wrapper module so that it shares one dependency graph with kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
