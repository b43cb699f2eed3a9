package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	remote "k8s.io/cri-client/pkg"
)

// runCRI is a minimal CRI client for deploy/local/down and for debugging
// (Debian has no crictl):
//
//	cri ps        --endpoint E   list pod sandboxes and containers
//	cri rm-pods   --endpoint E   stop and remove every pod sandbox
//
// rm-pods goes through the CRI like the kubelet does, so containerd stops the
// containers, runs the CNI DEL (which releases the pod IP and removes the
// veth and the network namespace) and unmounts the rootfs. Stopping
// containerd instead would leave the shims, containers and namespaces behind.
func runCRI() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cri ps|rm-pods --endpoint unix:///path/containerd.sock")
		return 2
	}
	what := os.Args[1]
	fs := flag.NewFlagSet("cri", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "CRI endpoint (unix:///...)")
	timeout := fs.Duration("timeout", 60*time.Second, "overall time limit")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rs, err := remote.NewRemoteRuntimeService(ctx, *endpoint, 10*time.Second, noop.NewTracerProvider(), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri:", err)
		return 1
	}
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cri: list pods:", err)
		return 1
	}
	switch what {
	case "ps":
		ctrs, err := rs.ListContainers(ctx, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cri: list containers:", err)
			return 1
		}
		for _, p := range pods {
			fmt.Printf("pod %s %s/%s %s\n", p.Id[:13], p.Metadata.Namespace, p.Metadata.Name, p.State)
			for _, c := range ctrs {
				if c.PodSandboxId == p.Id {
					fmt.Printf("  container %s %s %s %s\n", c.Id[:13], c.Metadata.Name, c.State, c.Image.GetImage())
				}
			}
		}
	case "rm-pods":
		failed := 0
		for _, p := range pods {
			name := p.Metadata.Namespace + "/" + p.Metadata.Name
			if err := rs.StopPodSandbox(ctx, p.Id); err != nil {
				fmt.Fprintf(os.Stderr, "cri: stop %s: %v\n", name, err)
				failed++
				continue
			}
			if err := rs.RemovePodSandbox(ctx, p.Id); err != nil {
				fmt.Fprintf(os.Stderr, "cri: remove %s: %v\n", name, err)
				failed++
				continue
			}
			fmt.Printf("removed pod %s (%s)\n", name, p.Id[:13])
		}
		if failed > 0 {
			return 1
		}
	default:
		fmt.Fprintln(os.Stderr, "cri: unknown command", what)
		return 2
	}
	return 0
}
