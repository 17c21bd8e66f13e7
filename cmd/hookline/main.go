// Command hookline runs the Hookline webhook delivery pipeline and its tools.
//
//	hookline serve     run the pipeline stages and the HTTP API
//	hookline broker    run the embedded Kafka broker alone (local scale-out)
//	hookline receive   a demo receiver that verifies and prints deliveries
//
// Every flag can also be set by an environment variable: HOOKLINE_ and the
// flag name in upper case with dashes as underscores (--data-dir is
// HOOKLINE_DATA_DIR). A flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hookline/hookline/bench"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	name    string
	summary string
	flags   func(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the pipeline stages and the HTTP API", serveFlags},
		{"broker", "run the embedded Kafka broker alone, for several serve processes to share", brokerFlags},
		{"receive", "run a demo receiver that verifies signatures and prints deliveries", receiveFlags},
		{"bench", "run an end-to-end load test of hookline serve and print a table", func(fs *flag.FlagSet) func(context.Context, io.Writer, io.Writer) error {
			return bench.Flags(fs, version, os.Executable)
		}},
		{"deliveries", "print a webhook's delivery history as a table", deliveriesFlags},
		{"redeliver", "redeliver a delivery, or every failed delivery of a webhook", redeliverFlags},
		{"replay", "replay past events into webhooks, or cancel a replay", replayFlags},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "hookline", version)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("hookline "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		runCmd := c.flags(fs)
		if err := parse(fs, args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, "hookline:", err)
			return 2
		}
		if err := runCmd(ctx, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "hookline:", err)
			if errors.As(err, new(usageError)) {
				return 2 // flags that do not go together, like a flag that does not parse
			}
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "hookline: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "help" || a == "-help" }

// parse applies HOOKLINE_* environment variables, then the command line.
func parse(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return "HOOKLINE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hookline %s: webhook delivery on Kafka\n\nUsage:\n  hookline <command> [flags]\n\nCommands:\n", version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag can be set by an environment variable: HOOKLINE_ and the flag name\nin upper case with dashes as underscores (--data-dir is HOOKLINE_DATA_DIR).\nA flag on the command line wins over the environment.")
	for _, c := range commands() {
		fs := flag.NewFlagSet("hookline "+c.name, flag.ContinueOnError)
		c.flags(fs)
		fmt.Fprintf(w, "\nhookline %s flags:\n", c.name)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
