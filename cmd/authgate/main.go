// Command authgate is the authgate gateway: a Backend-for-Frontend that owns the OIDC login,
// keeps sessions server-side and reverse-proxies authenticated requests with identity headers.
//
//	authgate serve --config FILE       run the gateway (the default command)
//	authgate demo [--listen ADDR]      the whole flow on one machine, nothing installed
//	authgate check-config --config FILE
//	authgate migrate --config FILE
//	authgate version
//
// This package is the only place that reads flags, the environment and the config file; it
// hands every other package its own Options.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "authgate:", err)
		}
		os.Exit(1)
	}
}

// usageError is an error that has already been reported to the user.
type usageError struct{ error }

// run dispatches a command line. It returns when the command is done or ctx is cancelled.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		path, err := configFlag("serve", args, environ, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, path, environ, stderr)
	case "check-config":
		path, err := configFlag("check-config", args, environ, stderr)
		if err != nil {
			return err
		}
		return checkConfig(path, environ, stdout, stderr)
	case "migrate":
		path, err := configFlag("migrate", args, environ, stderr)
		if err != nil {
			return err
		}
		return migrate(ctx, path, environ, stdout)
	case "demo":
		return demo(ctx, args, environ, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "authgate %s (commit %s, %s)\n", version, buildCommit(), runtime.Version())
		return nil
	default:
		fmt.Fprintf(stderr, "authgate: unknown command %q\nusage: authgate [serve|demo|check-config|migrate|version] [flags]\n", cmd)
		return usageError{errors.New("unknown command")}
	}
}

// configFlag parses --config; it defaults to $AUTHGATE_CONFIG, then ./authgate.yaml.
func configFlag(name string, args, environ []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := lookupEnv(environ, "AUTHGATE_CONFIG")
	if def == "" {
		def = "authgate.yaml"
	}
	path := fs.String("config", def, "path of the YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return "", usageError{err}
	}
	return *path, nil
}

func lookupEnv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if len(environ[i]) > len(key) && environ[i][:len(key)+1] == key+"=" {
			return environ[i][len(key)+1:]
		}
	}
	return ""
}

// buildCommit is the commit from -ldflags, or from the Go build info (VCS stamping).
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
