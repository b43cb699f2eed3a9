// Command sparkvc-localkube is a multicall binary that runs the real upstream
// components of the sparkvc local Kubernetes environment: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok, and for
// the optional real node kubelet, kube-proxy and CoreDNS, linked once from
// their upstream Go modules (see go.mod for the pinned versions).
//
// The first argument selects the component; the remaining arguments are that
// component's own flags, exactly as for the upstream binary:
//
//	sparkvc-localkube kube-apiserver --secure-port=26443 ...
//
// A few small helper subcommands (pki, nodes, check, cri) are used by
// deploy/local/up to prepare certificates and kubeconfigs, register the fake
// nodes and probe readiness without needing kubectl on the machine.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // CronJob time zone support, as in the upstream mains.

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream.
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream.
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream.
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	kwoksignals "sigs.k8s.io/kwok/pkg/utils/signals"
)

var components = map[string]func() int{
	"etcd": func() int {
		// etcdmain.Main parses os.Args[1:] itself and exits on error.
		etcdmain.Main(os.Args)
		return 0
	},
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kwok":                    runKwok,
	"kubelet":                 runKubelet,
	"kube-proxy":              runKubeProxy,
	"coredns":                 runCoreDNS,
	"pki":                     runPKI,
	"nodes":                   runNodes,
	"check":                   runCheck,
	"cri":                     runCRI,
	"version": func() int {
		printVersions()
		return 0
	},
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := components[name]; !ok {
		if len(os.Args) < 2 {
			usage()
			os.Exit(2)
		}
		name = os.Args[1]
		// Make the component see itself as argv[0], so the upstream
		// flag parsing (cobra, pflag, etcd's flag set) reads its own flags.
		os.Args = os.Args[1:]
	}
	run, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "sparkvc-localkube: unknown component %q\n", name)
		usage()
		os.Exit(2)
	}
	os.Exit(run())
}

func usage() {
	names := make([]string, 0, len(components))
	for n := range components {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: sparkvc-localkube <component> [flags]\ncomponents: %v\n", names)
}

// runKwok mirrors sigs.k8s.io/kwok/cmd/kwok's main.
func runKwok() int {
	// The Kubernetes packages linked into this binary register global flags
	// in pflag.CommandLine at init (notably a non-bool --version), which
	// cobra merges into every command and which then clash with kwok's own
	// --version. kwok defines all its flags itself, so give it a clean set.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)

	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}

	ctx := kwoksignals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flagset)
	ctx, err := kwokconfig.InitFlags(ctx, flagset)
	if err != nil {
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		return 1
	}
	return 0
}
