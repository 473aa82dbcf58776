// Command probe is the payload of hack/airgap/verify.sh: a static binary in
// a FROM-scratch image that verify.sh builds locally and loads into the kind
// cluster with `kind load docker-image`, so one tiny image proves that
// loading works and serves every pod check. It needs only the standard
// library, so it builds offline.
//
//	probe net           resolve the API service by its cluster DNS name and
//	                    open a TCP connection to it (CoreDNS + kube-proxy)
//	probe write DIR     write a file into DIR and read it back (a PVC)
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe net | probe write DIR")
	}
	switch os.Args[1] {
	case "net":
		checkNet()
	case "write":
		if len(os.Args) != 3 {
			fail("usage: probe write DIR")
		}
		checkWrite(os.Args[2])
	default:
		fail("unknown check " + os.Args[1])
	}
}

func checkNet() {
	const name = "kubernetes.default.svc.cluster.local"
	addrs, err := net.LookupHost(name)
	if err != nil || len(addrs) == 0 {
		fail(fmt.Sprintf("DNS lookup of %s: %v", name, err))
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(addrs[0], "443"), 10*time.Second)
	if err != nil {
		fail(fmt.Sprintf("connect to %s:443: %v", addrs[0], err))
	}
	_ = conn.Close()
	fmt.Printf("ok: %s is %s and answers on 443\n", name, addrs[0])
}

func checkWrite(dir string) {
	path := filepath.Join(dir, "probe.txt")
	want := []byte("written at " + time.Now().UTC().Format(time.RFC3339Nano) + "\n")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		fail("write: " + err.Error())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		fail(fmt.Sprintf("read back %q: %v", got, err))
	}
	fmt.Printf("ok: wrote and read back %s\n", path)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe: "+msg)
	os.Exit(1)
}
