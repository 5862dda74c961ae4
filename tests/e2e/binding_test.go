package e2e

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// The binary's HTTP server (metrics, /ready, debug endpoints, and in streams
// mode an unauthenticated API that can start a `command` processor) listens
// on 127.0.0.1:4195 when nothing says otherwise: a config without an http
// block, and `oktadetect streams`. These runs use the real default port, so
// they run one after the other, never in parallel.
func TestHTTPListensOnLoopbackByDefault(t *testing.T) {
	dir := t.TempDir()
	noHTTP := filepath.Join(dir, "no-http.yaml")
	writeFile(t, noHTTP, "input:\n  generate: {interval: 1s, mapping: 'root = {}'}\noutput:\n  drop: {}\n")
	modes := map[string][]string{
		"run without an http block": {"-c", noHTTP},
		"streams":                   {"streams"},
	}
	for name, args := range modes {
		t.Run(name, func(t *testing.T) {
			defaultPortFree(t)
			addrs := listenAddrs(t, startBinary(t, withoutEnv("OKTADETECT_HTTP_ADDRESS"), args...))
			if len(addrs) != 1 || addrs[0] != "127.0.0.1:4195" {
				t.Fatalf("listening on %v, want only 127.0.0.1:4195", addrs)
			}
			if code := httpStatus("http://127.0.0.1:4195/ping"); code != http.StatusOK {
				t.Errorf("GET http://127.0.0.1:4195/ping: status %d", code)
			}
			if ip := nonLoopbackIP(); ip != "" {
				if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "4195"), 5*time.Second); err == nil {
					c.Close()
					t.Errorf("port 4195 answers on the machine's address %s", ip)
				}
			}
		})
	}
}

// Exposing the server is a deliberate choice: an http block in the config,
// or $OKTADETECT_HTTP_ADDRESS (what the container image sets), which also
// covers streams mode and configs without an http block.
func TestHTTPExposedOnlyWhenConfigured(t *testing.T) {
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	dir := t.TempDir()
	exposed := filepath.Join(dir, "exposed.yaml")
	writeFile(t, exposed, "http:\n  address: 0.0.0.0:"+port+"\ninput:\n  generate: {interval: 1s, mapping: 'root = {}'}\noutput:\n  drop: {}\n")
	run := startBinary(t, withoutEnv("OKTADETECT_HTTP_ADDRESS"), "-c", exposed)
	if addrs := listenAddrs(t, run); !allInterfaces(addrs, port) {
		t.Errorf("config http.address 0.0.0.0:%s: listening on %v", port, addrs)
	}

	port = strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	run = startBinary(t, append(withoutEnv("OKTADETECT_HTTP_ADDRESS"), "OKTADETECT_HTTP_ADDRESS=0.0.0.0:"+port), "streams")
	if addrs := listenAddrs(t, run); !allInterfaces(addrs, port) {
		t.Errorf("streams with OKTADETECT_HTTP_ADDRESS=0.0.0.0:%s: listening on %v", port, addrs)
	}
}

// defaultPortFree fails at once, saying why, when another process holds
// the default port this test must use.
func defaultPortFree(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:4195")
	if err != nil {
		t.Fatalf("another process holds port 4195, which this test of the default address needs: %v", err)
	}
	ln.Close()
}

// allInterfaces: one listener on port, on every interface (Go listens on
// 0.0.0.0 with a dual-stack [::] socket).
func allInterfaces(addrs []string, port string) bool {
	if len(addrs) != 1 {
		return false
	}
	host, p, err := net.SplitHostPort(addrs[0])
	return err == nil && p == port && net.ParseIP(host).IsUnspecified()
}

// listenAddrs waits until run listens on TCP and returns the addresses of
// its listening sockets (read from /proc: the sockets among the process's
// open files).
func listenAddrs(t *testing.T, run *pipelineRun) []string {
	t.Helper()
	var addrs []string
	testkit.Until(t, "the binary listening on TCP", func() (bool, string) {
		select {
		case <-run.done:
			t.Fatalf("oktadetect exited: %v\n%s", run.err, run.output.String())
		default:
		}
		var err error
		addrs, err = processListeners(run.cmd.Process.Pid)
		return err == nil && len(addrs) > 0, fmt.Sprintf("listeners %v (%v); output:\n%s", addrs, err, tail(run.output.String(), 2000))
	})
	return addrs
}

// processListeners returns "ip:port" of every listening TCP socket that pid
// holds open.
func processListeners(pid int) ([]string, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			const listen = "0A"
			if len(f) < 10 || f[3] != listen || !inodes[f[9]] {
				continue
			}
			addr, err := procAddr(f[1])
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, addr)
		}
	}
	return addrs, nil
}

// procAddr decodes /proc/net/tcp's "0100007F:1063": the address in host
// byte order by 32-bit words (little-endian here), the port in hex.
func procAddr(s string) (string, error) {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil || len(raw)%4 != 0 {
		return "", fmt.Errorf("address %q: %v", s, err)
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", fmt.Errorf("port %q: %w", s, err)
	}
	ip := net.IP(raw)
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
}

// nonLoopbackIP is an address of this machine other than loopback, or ""
// when it has none (the /proc check above then stands alone).
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func httpStatus(url string) int {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// withoutEnv is our environment without the named variables.
func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// $OKTADETECT_STATE_DIR that does not exist yet is created (0700) before the
// config runs; one that cannot be created stops the binary with its name.
func TestStateDirCreatedAtStart(t *testing.T) {
	base := t.TempDir()
	conf := filepath.Join(base, "c.yaml")
	writeFile(t, conf, "input:\n  generate: {interval: 1s, mapping: 'root = {}'}\noutput:\n  drop: {}\n")
	state := filepath.Join(base, "state", "oktadetect")
	listenAddrs(t, startBinary(t, environ("OKTADETECT_STATE_DIR="+state, "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0"), "-c", conf)) // running
	info, err := os.Stat(state)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("state directory %s: %v, err %v; want created with mode 0700", state, info, err)
	}

	blocked := filepath.Join(base, "c.yaml", "state") // below a file
	cmd := exec.Command(binary, "-c", conf)
	cmd.Env = environ("OKTADETECT_STATE_DIR="+blocked, "OKTADETECT_HTTP_ADDRESS=127.0.0.1:0")
	out, err := runWithTimeout(cmd, testkit.Patience)
	if code := exitCode(err); code == 0 || code == -1 || !strings.Contains(string(out), "OKTADETECT_STATE_DIR="+blocked) {
		t.Fatalf("state directory below a file: exit %d, want a refusal naming it:\n%s", code, out)
	}
}
