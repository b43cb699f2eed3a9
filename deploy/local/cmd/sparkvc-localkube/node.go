package main

// The components of the one real node that deploy/local/up starts beside the
// kwok nodes when SPARKVC_REAL_NODE=1: kubelet, kube-proxy and CoreDNS.
// containerd, runc and the CNI plugins come from Debian's packages.

import (
	"context"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	"k8s.io/component-base/cli"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	// The CoreDNS plugins the local cluster needs, and no others. Upstream's
	// core/plugin imports every plugin, including the cloud DNS back ends
	// (Route 53, Azure, Cloud DNS) with their SDKs; none of them can work
	// here, and "forward" is left out on purpose: pods must never resolve
	// (and so be steered towards) names outside the cluster.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// coreDNSDirectives is the plugin chain order. It must follow upstream's
// plugin.cfg order (bind ... ready, health ... errors, log ... cache ...
// kubernetes): a plugin handles a query before the ones after it, so cache
// has to come before the kubernetes back end it caches.
var coreDNSDirectives = []string{"bind", "ready", "health", "errors", "log", "cache", "kubernetes"}

func runKubelet() int {
	return cli.Run(kubelet.NewKubeletCommand(context.Background()))
}

func runKubeProxy() int {
	return cli.Run(kubeproxy.NewProxyCommand())
}

// runCoreDNS mirrors coredns' main (which imports core/plugin for the full
// plugin set) with the trimmed set above. coremain.Run parses the standard
// library's flag.CommandLine (-conf, -dns.port, ...) from os.Args and exits
// the process itself.
func runCoreDNS() int {
	dnsserver.Directives = coreDNSDirectives
	coremain.Run()
	return 0
}
