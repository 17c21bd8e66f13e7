package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of the README section whose
// heading is heading, up to the next heading of its level or higher.
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	level := strings.Index(heading, " ") // "##" or "###"
	rest := readme[start+len(heading)+2:]
	end := len(rest)
	for _, l := range []string{"\n## ", "\n### "}[:level-1] {
		if i := strings.Index(rest, l); i >= 0 && i < end {
			end = i
		}
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(rest[:end], -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("README section %q has no sh blocks", heading)
	}
	return blocks
}

// TestReadmeWalkthroughsRunAsWritten runs the README's five-minute
// walkthrough and its replay walkthrough as a new user would paste them:
// every sh block in order, in one shell, against `hookline serve` and
// `hookline receive` started as `make run` and `make receiver SECRET=…`
// start them (only the addresses differ, so that tests can run side by
// side). The receiver must verify every delivery: the two ticket events,
// then the same two replayed into the new webhook.
func TestReadmeWalkthroughsRunAsWritten(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	fatalIf(t, err)
	readme := string(raw)
	blocks := append(readmeBlocks(t, readme, "## Five-minute walkthrough"),
		readmeBlocks(t, readme, "### Replays: the last hour into a new webhook")...)

	// The receiver, as `make receiver SECRET=…` starts it.
	secret := regexp.MustCompile(`make receiver SECRET=(\S+)`).FindStringSubmatch(readme)
	if secret == nil {
		t.Fatal("the walkthrough does not start the receiver with a SECRET")
	}
	recv := exec.Command(binary, "receive", "--addr", "127.0.0.1:0", "--secret", secret[1])
	recvOut := &lockedWriter{w: &bytes.Buffer{}}
	stdout, err := recv.StdoutPipe()
	fatalIf(t, err)
	fatalIf(t, recv.Start())
	t.Cleanup(func() { recv.Process.Kill(); recv.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`receiver ready: http://(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
			recvOut.Write([]byte(sc.Text() + "\n"))
		}
	}()
	var recvAddr string
	select {
	case recvAddr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver did not start")
	}
	received := func() string {
		recvOut.mu.Lock()
		defer recvOut.mu.Unlock()
		return recvOut.w.(*bytes.Buffer).String()
	}
	p := startServe(t, "--data-dir", t.TempDir())

	var script strings.Builder
	script.WriteString("set -e\n")
	// settle stands for a reader's pace between blocks: what a block
	// started has time to arrive and reach the history.
	script.WriteString(`settle() { sleep 2; }` + "\n")
	for _, b := range blocks {
		for _, line := range strings.Split(b, "\n") {
			if strings.HasPrefix(line, "make ") {
				continue // started above
			}
			line = strings.ReplaceAll(line, "http://127.0.0.1:8080", p.base)
			line = strings.ReplaceAll(line, "127.0.0.1:8090", recvAddr)
			script.WriteString(line + "\n")
		}
		script.WriteString("echo\nsettle\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\nscript:\n%s\noutput:\n%s", err, script.String(), out)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nscript:\n%s\noutput:\n%s\nreceiver:\n%s", append(args, script.String(), out, received())...)
	}
	for _, want := range []string{`"has_secret":true`, `"ids":[`, `"state":"succeeded"`, `"enabled":false`, `"state":"done","scanned":3,"matched":2,"enqueued":0`} {
		if !bytes.Contains(out, []byte(want)) {
			fail("the walkthrough's output lacks %s", want)
		}
	}
	if bytes.Contains(out, []byte(`"error"`)) {
		fail("an API call of the walkthrough answered an error")
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(received(), "(signature ok)") < 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := strings.Count(received(), "(signature ok)"); got != 4 || strings.Contains(received(), "REJECTED") {
		fail("the receiver verified %d deliveries, want 4 (2 ticket events, then both replayed) and none rejected", got)
	}
	if strings.Count(received(), " ticket.created attempt=1 ") != 2 || strings.Count(received(), " ticket.updated attempt=1 ") != 2 {
		fail("the receiver did not get each ticket event twice (live and replayed)")
	}
}
