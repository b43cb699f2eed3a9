package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// client identities that get a certificate and a kubeconfig.
// The controller-manager and scheduler use their well-known user names, which
// the API server's bootstrap RBAC policy binds to exactly the permissions they
// need. kwok has no bootstrap role; it runs as a cluster admin (as kwokctl
// does), which is acceptable for a node simulator on a loopback-only cluster.
type client struct {
	file   string
	cn     string
	groups []string
}

var clients = []client{
	{"admin", "sparkvc-admin", []string{"system:masters"}},
	{"kube-controller-manager", "system:kube-controller-manager", nil},
	{"kube-scheduler", "system:kube-scheduler", nil},
	{"kwok", "sparkvc-kwok", []string{"system:masters"}},
	// The API server's client identity towards kubelets (logs, exec,
	// port-forward, metrics). deploy/local/up binds it to the bootstrap
	// ClusterRole system:kubelet-api-admin; kubelets authorize it through
	// the API server (webhook mode) like any other caller.
	{"apiserver-kubelet-client", "sparkvc-apiserver-kubelet-client", nil},
}

// nodeClients are the identities of the real node's components (only with
// pki --node). The kubelet's user name system:node:<node> in group
// system:nodes is what the API server's Node authorizer and the bootstrap
// RBAC policy expect; system:kube-proxy is bound by the bootstrap policy to
// system:node-proxier. CoreDNS has no bootstrap role: up gives its user a
// ClusterRole with exactly list/watch on services, endpointslices and
// namespaces (what the kubernetes plugin watches).
func nodeClients(node string) []client {
	return []client{
		{"kubelet", "system:node:" + node, []string{"system:nodes"}},
		{"kube-proxy", "system:kube-proxy", nil},
		{"coredns", "sparkvc-coredns", nil},
	}
}

// runPKI creates, if absent, the cluster CA, the API server serving
// certificate, the service-account signing key pair, client certificates and
// one kubeconfig per client. Existing files are kept, so a restart keeps the
// same identities and tokens stay valid.
func runPKI() int {
	fs := flag.NewFlagSet("pki", flag.ExitOnError)
	dir := fs.String("dir", "", "directory for certificates and kubeconfigs")
	server := fs.String("server", "https://127.0.0.1:26443", "API server URL written into the kubeconfigs")
	contextName := fs.String("context", "sparkvc-local", "kubeconfig context/cluster name")
	node := fs.String("node", "", "also create the real node's identities (kubelet, kube-proxy, CoreDNS) for this node name")
	nodeIP := fs.String("node-ip", "", "the real node's IP, for the kubelet's serving certificate (with --node)")
	_ = fs.Parse(os.Args[1:])
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "pki: --dir is required")
		return 2
	}
	if *node != "" && net.ParseIP(*nodeIP) == nil {
		fmt.Fprintln(os.Stderr, "pki: --node needs --node-ip")
		return 2
	}
	if err := pki(*dir, *server, *contextName, *node, net.ParseIP(*nodeIP)); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		return 1
	}
	return 0
}

func pki(dir, server, contextName, node string, nodeIP net.IP) error {
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(pkiDir, name) }

	caCert, caKey, err := loadOrCreateCA(p("ca.crt"), p("ca.key"))
	if err != nil {
		return err
	}

	// API server serving certificate: loopback plus the in-cluster names
	// and the first service IP of 10.96.0.0/16 (the kubernetes service).
	if !exists(p("apiserver.crt")) {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		}
		if err := issue(tmpl, caCert, caKey, p("apiserver.crt"), p("apiserver.key")); err != nil {
			return err
		}
	}

	// Service-account token signing key pair (RSA, as the API server's
	// token issuer and most verifiers expect RS256).
	if !exists(p("sa.key")) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return err
		}
		if err := writePEM(p("sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
			return err
		}
		if err := writePEM(p("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
			return err
		}
	}

	all := clients
	if node != "" {
		all = append(all, nodeClients(node)...)
		// The kubelet's serving certificate, so the API server can verify
		// the kubelet it talks to (--kubelet-certificate-authority). The
		// API server dials the node's InternalIP; the name is for humans.
		// Reissued when the node name or IP changes.
		crt := p("kubelet-server.crt")
		if old, err := readCert(crt); err != nil || len(old.IPAddresses) == 0 ||
			!old.IPAddresses[0].Equal(nodeIP) || len(old.DNSNames) == 0 || old.DNSNames[0] != node {
			tmpl := &x509.Certificate{
				Subject:     pkix.Name{CommonName: node},
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				DNSNames:    []string{node, "localhost"},
				IPAddresses: []net.IP{nodeIP, net.ParseIP("127.0.0.1")},
			}
			if err := issue(tmpl, caCert, caKey, crt, p("kubelet-server.key")); err != nil {
				return err
			}
		}
	}
	for _, c := range all {
		crt, key := p(c.file+".crt"), p(c.file+".key")
		// A certificate made for another node name is replaced.
		if old, err := readCert(crt); err == nil && old.Subject.CommonName != c.cn {
			_ = os.Remove(crt)
		}
		if !exists(crt) {
			tmpl := &x509.Certificate{
				Subject:     pkix.Name{CommonName: c.cn, Organization: c.groups},
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}
			if err := issue(tmpl, caCert, caKey, crt, key); err != nil {
				return err
			}
		}
		kc := clientcmdapi.NewConfig()
		kc.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: p("ca.crt")}
		kc.AuthInfos[c.cn] = &clientcmdapi.AuthInfo{ClientCertificate: crt, ClientKey: key}
		kc.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: c.cn, Namespace: "default"}
		kc.CurrentContext = contextName
		name := c.file + ".kubeconfig"
		if c.file == "admin" {
			name = "kubeconfig"
		}
		if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func loadOrCreateCA(crtPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if exists(crtPath) && exists(keyPath) {
		crt, err := readCert(crtPath)
		if err != nil {
			return nil, nil, err
		}
		key, err := readKey(keyPath)
		if err != nil {
			return nil, nil, err
		}
		return crt, key, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sparkvc-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(crtPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	crt, err := x509.ParseCertificate(der)
	return crt, key, err
}

func issue(tmpl *x509.Certificate, ca *x509.Certificate, caKey crypto.Signer, crtPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().AddDate(5, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(crtPath, "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM data", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM data", path)
	}
	switch blk.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	}
	return nil, fmt.Errorf("%s: unsupported key type %q", path, blk.Type)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

func printVersions() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Println("no build info")
		return
	}
	fmt.Println("go", bi.GoVersion)
	for _, d := range bi.Deps {
		switch d.Path {
		case "k8s.io/kubernetes", "go.etcd.io/etcd/server/v3", "sigs.k8s.io/kwok", "k8s.io/client-go":
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
			fmt.Println(d.Path, v)
		}
	}
}
