package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// kwokNodeAnnotation marks nodes kwok manages (kwok runs with
	// --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake).
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// localNodeLabel marks nodes registered by this tool, so scaling down
	// deletes only ours.
	localNodeLabel = "sparkvc.io/local-node"
)

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// runNodes registers --count fake nodes (and removes surplus ones registered
// earlier with a larger count). kwok then drives their status.
func runNodes() int {
	fs := flag.NewFlagSet("nodes", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	count := fs.Int("count", 4, "number of fake nodes")
	prefix := fs.String("prefix", "kwok-node-", "node name prefix")
	cpu := fs.String("cpu", "32", "CPU capacity per node")
	memory := fs.String("memory", "128Gi", "memory capacity per node")
	pods := fs.String("pods", "110", "pod capacity per node")
	_ = fs.Parse(os.Args[1:])

	cs, err := clientFor(*kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodes:", err)
		return 1
	}
	ctx := context.Background()
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(*cpu),
		corev1.ResourceMemory:           resource.MustParse(*memory),
		corev1.ResourcePods:             resource.MustParse(*pods),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	want := map[string]bool{}
	for i := range *count {
		name := fmt.Sprintf("%s%d", *prefix, i)
		want[name] = true
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Annotations: map[string]string{
					kwokNodeAnnotation:             "fake",
					"node.alpha.kubernetes.io/ttl": "0",
				},
				Labels: map[string]string{
					"beta.kubernetes.io/arch":       "amd64",
					"beta.kubernetes.io/os":         "linux",
					"kubernetes.io/arch":            "amd64",
					"kubernetes.io/os":              "linux",
					"kubernetes.io/hostname":        name,
					"kubernetes.io/role":            "agent",
					"node-role.kubernetes.io/agent": "",
					"type":                          "kwok",
					localNodeLabel:                  "true",
				},
			},
			Status: corev1.NodeStatus{
				Capacity:    resources,
				Allocatable: resources,
				// A distinct InternalIP per node (10.240.0.0/16); kwok uses it
				// as the hostIP of the node's pods.
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.240.%d.%d", i/250, i%250+1)},
					{Type: corev1.NodeHostName, Address: name},
				},
				NodeInfo: corev1.NodeSystemInfo{
					Architecture:    "amd64",
					OperatingSystem: "linux",
				},
			},
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintf(os.Stderr, "nodes: create %s: %v\n", name, err)
			return 1
		}
	}
	existing, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: localNodeLabel + "=true"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodes:", err)
		return 1
	}
	for _, n := range existing.Items {
		if !want[n.Name] && strings.HasPrefix(n.Name, *prefix) {
			if err := cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				fmt.Fprintf(os.Stderr, "nodes: delete %s: %v\n", n.Name, err)
				return 1
			}
		}
	}
	return 0
}

// runCheck probes one readiness condition once and exits 0 when it holds.
//
//	check readyz     --kubeconfig K       API server /readyz
//	check default-sa --kubeconfig K       default/default ServiceAccount exists
//	check nodes      --kubeconfig K --count N   N local nodes are Ready
//	check node       --kubeconfig K --name N    node N (the real node) is Ready
func runCheck() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: check readyz|default-sa|nodes|node --kubeconfig K [--count N] [--name N]")
		return 2
	}
	what := os.Args[1]
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	count := fs.Int("count", 4, "expected Ready nodes (nodes)")
	name := fs.String("name", "", "node name (node)")
	_ = fs.Parse(os.Args[2:])

	cs, err := clientFor(*kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch what {
	case "readyz":
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "readyz: %v %s\n", err, body)
			return 1
		}
	case "default-sa":
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "default-sa:", err)
			return 1
		}
	case "nodes":
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: localNodeLabel + "=true"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "nodes:", err)
			return 1
		}
		ready := 0
		for _, n := range list.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < *count {
			fmt.Fprintf(os.Stderr, "nodes: %d/%d Ready\n", ready, *count)
			return 1
		}
	case "node":
		n, err := cs.CoreV1().Nodes().Get(ctx, *name, metav1.GetOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			return 1
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return 0
				}
				fmt.Fprintf(os.Stderr, "node %s: Ready=%s: %s\n", *name, c.Status, c.Message)
				return 1
			}
		}
		fmt.Fprintf(os.Stderr, "node %s: no Ready condition yet\n", *name)
		return 1
	default:
		fmt.Fprintln(os.Stderr, "check: unknown probe", what)
		return 2
	}
	return 0
}
