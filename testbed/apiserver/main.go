// Command apiserver runs the Kubernetes control plane of mcwan's test tiers: an embedded etcd
// and kube-apiserver (as a library, from the Kubernetes release pinned in go.mod), both on
// 127.0.0.1, with serving certificates of its own CA, RBAC authorization and static tokens for
// the test identities. It writes an admin kubeconfig and answers until stdin closes or it gets
// SIGTERM/SIGINT, so a test process that dies takes its control planes with it. A line
// `compact` on stdin compacts etcd's history up to its current revision (answered with one
// JSON line), so that watches from older versions are refused, as in a long-running cluster.
//
//	apiserver serve --dir DIR [--name NAME] [--port PORT]
//	apiserver up --clusters N --dir DIR
//
// serve keeps its state in DIR (etcd data, certificates, tokens, ports): serving the same DIR
// again brings the same cluster back on the same port, as a restarted control plane would.
// up starts N of them (DIR/cluster-1 .. DIR/cluster-N, named cluster-i) and stops them all
// on SIGTERM/SIGINT.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// Identities with static tokens (token file: token,user,uid,"groups").
var identities = []struct{ user, groups string }{
	{"admin", "system:masters"},
	// Authenticated but bound to nothing: every request is Forbidden until a test grants it.
	{"nobody", "system:authenticated"},
}

// state is what a restart must find again: the ports and the tokens.
type state struct {
	Port       int               `json:"port"`
	EtcdClient int               `json:"etcdClient"`
	EtcdPeer   int               `json:"etcdPeer"`
	Tokens     map[string]string `json:"tokens"`
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: apiserver serve --dir DIR [--name NAME] [--port PORT] | up --clusters N --dir DIR"))
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "up":
		err = up(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (serve, up)", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "apiserver:", err)
	os.Exit(1)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "state directory (created if absent)")
	name := fs.String("name", "testbed", "cluster name: the kubeconfig's cluster, user and context")
	port := fs.Int("port", 0, "secure port on 127.0.0.1 (0: a free one, kept in DIR for restarts)")
	_ = fs.Parse(args)
	if *dir == "" {
		return errors.New("serve: --dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	st, err := loadState(*dir, *port)
	if err != nil {
		return err
	}
	if err := ensurePKI(*dir); err != nil {
		return err
	}
	if err := writeTokens(*dir, st); err != nil {
		return err
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	etcd, err := startEtcd(*dir, st)
	if err != nil {
		cancel()
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()
	go func() {
		// Commands, one per line; stdin closing means the process that started us is gone.
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			switch cmd := strings.TrimSpace(lines.Text()); cmd {
			case "compact":
				rev := etcd.Server.KV().Rev()
				_, err := etcd.Server.Compact(ctx, &etcdserverpb.CompactionRequest{Revision: rev, Physical: true})
				if err != nil {
					fmt.Printf("{\"error\":%q}\n", err.Error())
				} else {
					fmt.Printf("{\"compacted\":%d}\n", rev)
				}
			default:
				fmt.Printf("{\"error\":%q}\n", "unknown command "+cmd)
			}
		}
		cancel()
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(apiserverArgs(*dir, st))
	cmd.SilenceUsage = true
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	kubeconfig := filepath.Join(*dir, "kubeconfig")
	if err := writeKubeconfig(*dir, *name, st, "admin", kubeconfig); err != nil {
		return err
	}
	for _, id := range identities[1:] {
		if err := writeKubeconfig(*dir, *name, st, id.user, filepath.Join(*dir, "kubeconfig-"+id.user)); err != nil {
			return err
		}
	}
	if err := waitReady(ctx, *dir, st, done); err != nil {
		return err
	}
	ready, _ := json.Marshal(map[string]any{
		"ready": true, "name": *name, "server": serverURL(st), "kubeconfig": kubeconfig,
	})
	fmt.Println(string(ready))

	select {
	case <-ctx.Done():
		// A short grace for kube-apiserver's own shutdown, then etcd; the watch streams of a
		// stopping kube-apiserver can hold etcd's graceful close for many seconds, and what
		// etcd acknowledged is already written, so a restart finds it either way.
		select {
		case <-done:
		case <-time.After(500 * time.Millisecond):
		}
		closed := make(chan struct{})
		go func() { etcd.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(time.Second):
		}
		os.Exit(0)
		return nil
	case err := <-done:
		if err == nil {
			err = errors.New("kube-apiserver stopped")
		}
		return err
	}
}

func apiserverArgs(dir string, st *state) []string {
	p := func(f string) string { return filepath.Join(dir, f) }
	return []string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", st.EtcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// A loopback address cannot be an endpoint of the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(st.Port),
		"--tls-cert-file=" + p("serving.crt"),
		"--tls-private-key-file=" + p("serving.key"),
		"--token-auth-file=" + p("tokens.csv"),
		"--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p("sa.key"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--api-audiences=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
		"--cert-dir=" + p("certs"),
		"--v=0",
	}
}

func serverURL(st *state) string { return fmt.Sprintf("https://127.0.0.1:%d", st.Port) }

func startEtcd(dir string, st *state) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.Name = "testbed"
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", st.EtcdClient))
	peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", st.EtcdPeer))
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = true // test data: durability across a machine crash is not needed
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("not ready after 60 s")
	}
}

func waitReady(ctx context.Context, dir string, st *state, done <-chan error) error {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, serverURL(st)+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+st.Tokens["admin"])
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("kube-apiserver stopped before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("kube-apiserver not ready after 120 s")
}

func loadState(dir string, port int) (*state, error) {
	path := filepath.Join(dir, "state.json")
	var st state
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if port != 0 && port != st.Port {
			return nil, fmt.Errorf("%s: the cluster serves port %d, not %d", path, st.Port, port)
		}
		return &st, nil
	}
	var err error
	st.Port = port
	if st.Port == 0 {
		if st.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if st.EtcdClient, err = freePort(); err != nil {
		return nil, err
	}
	if st.EtcdPeer, err = freePort(); err != nil {
		return nil, err
	}
	st.Tokens = map[string]string{}
	for _, id := range identities {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		st.Tokens[id.user] = hex.EncodeToString(b)
	}
	b, _ := json.MarshalIndent(&st, "", "  ")
	return &st, os.WriteFile(path, b, 0o600)
}

// freePort is a port that nothing listens on now; the kernel hands out ephemeral ports in
// turn, so it is not given again soon.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func writeTokens(dir string, st *state) error {
	var out []byte
	for _, id := range identities {
		out = fmt.Appendf(out, "%s,%s,%s,\"%s\"\n", st.Tokens[id.user], id.user, id.user, id.groups)
	}
	return os.WriteFile(filepath.Join(dir, "tokens.csv"), out, 0o600)
}

func writeKubeconfig(dir, name string, st *state, user, path string) error {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": name,
		"clusters": []any{map[string]any{"name": name, "cluster": map[string]any{
			"server": serverURL(st), "certificate-authority-data": ca,
		}}},
		"users": []any{map[string]any{"name": name + "-" + user, "user": map[string]any{
			"token": st.Tokens[user],
		}}},
		"contexts": []any{map[string]any{"name": name, "context": map[string]any{
			"cluster": name, "user": name + "-" + user,
		}}},
	}
	// JSON is YAML; []byte marshals as base64, as kubeconfig's *-data fields want.
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ensurePKI writes, once, a CA, a serving certificate for 127.0.0.1 and localhost signed by it,
// and the service-account signing key.
func ensurePKI(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "serving.crt")); err == nil {
		return nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mcwan testbed CA"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	for file, block := range map[string]*pem.Block{
		"ca.crt":      {Type: "CERTIFICATE", Bytes: caDER},
		"serving.crt": {Type: "CERTIFICATE", Bytes: der},
		"serving.key": ecKey(key),
		"sa.key":      ecKey(saKey),
	} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func ecKey(k *ecdsa.PrivateKey) *pem.Block {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // a key we just generated always marshals
	}
	return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
}

// up starts N clusters as child processes and waits for a signal.
func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	n := fs.Int("clusters", 1, "how many clusters")
	dir := fs.String("dir", "", "state directory: one sub-directory per cluster")
	_ = fs.Parse(args)
	if *dir == "" || *n < 1 {
		return errors.New("up: --dir and --clusters >= 1 are required")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range children {
			_ = c.Wait()
		}
	}()
	for i := 1; i <= *n; i++ {
		name := fmt.Sprintf("cluster-%d", i)
		c := exec.Command(self, "serve", "--dir", filepath.Join(*dir, name), "--name", name)
		c.Stdout = os.Stdout
		c.Stderr = os.Stderr
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		defer stdin.Close()
		if err := c.Start(); err != nil {
			return err
		}
		children = append(children, c)
	}
	<-ctx.Done()
	return nil
}
