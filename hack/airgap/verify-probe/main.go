// Command probe is the payload of `hack/airgap/airgap verify`: a static
// binary in a FROM-scratch image that the verify command builds locally and
// loads into the kind cluster with `kind load docker-image`, so one tiny
// image proves that loading works and serves every pod check. It needs only
// the standard library, so it builds offline.
//
//	probe net           resolve the API service by its cluster DNS name and
//	                    open a TCP connection to it (CoreDNS + kube-proxy)
//	probe write DIR     write a file into DIR and read it back (a PVC)
//	probe serve ADDR    answer every HTTP request with "<node> <pod>" (from
//	                    the NODE_NAME and POD_NAME environment variables)
//	probe get URL       one GET must answer 200; prints the body
//	probe refused URL   every GET of several, over ~10 s, must fail (a
//	                    NetworkPolicy drops the traffic)
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe net | write DIR | serve ADDR | get URL | refused URL")
	}
	arg := func() string {
		if len(os.Args) != 3 {
			fail("usage: probe " + os.Args[1] + " ARG")
		}
		return os.Args[2]
	}
	switch os.Args[1] {
	case "net":
		checkNet()
	case "write":
		checkWrite(arg())
	case "serve":
		serve(arg())
	case "get":
		body, err := get(arg())
		if err != nil {
			fail(err.Error())
		}
		fmt.Printf("ok: %s answered %q\n", os.Args[2], body)
	case "refused":
		checkRefused(arg())
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

func serve(addr string) {
	answer := os.Getenv("NODE_NAME") + " " + os.Getenv("POD_NAME")
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, answer)
	})
	server := &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	fail(server.ListenAndServe().Error())
}

var client = &http.Client{Timeout: 2 * time.Second}

// get retries for a few seconds: a Service's endpoints and DNS record can
// lag behind the pod becoming ready.
func get(url string) (string, error) {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		var resp *http.Response
		if resp, err = client.Get(url); err == nil {
			body, readErr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if readErr == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("status %d, body %q, read error %v", resp.StatusCode, body, readErr)
		}
		time.Sleep(time.Second)
	}
	return "", fmt.Errorf("GET %s: %w", url, err)
}

func checkRefused(url string) {
	const attempts = 4
	for i := 0; i < attempts; i++ {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			fail(fmt.Sprintf("GET %s answered %d: the traffic was not blocked", url, resp.StatusCode))
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Printf("ok: %d GETs of %s failed (blocked)\n", attempts, url)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe: "+msg)
	os.Exit(1)
}
