// Command potrack is the affiliate tracking server.
//
// The command line is urfave/cli (as ntfy's): every subcommand has its own
// --help listing each flag with its environment variable and default, flags
// are spelled --flag, and a stray argument is an error rather than the end of
// flag parsing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/potrack/potrack/server"
	"github.com/potrack/potrack/store"
)

// exitUsage is the exit status for a command line that cannot be run as
// written (unknown command, flag or argument), as in most Unix tools.
const exitUsage = 2

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// usageError is a command line that cannot be run as written: it is told in
// one line with a hint, and exits 2.
type usageError struct {
	msg  string
	hint string // the command whose --help to read
}

func (e *usageError) Error() string { return e.msg }

// run runs the command line args (args[0] is the program name) and returns
// the process's exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newCommand(stdout, stderr)
	err := root.Run(ctx, args)
	if err == nil {
		return 0
	}
	if topic, ok := strings.CutPrefix(err.Error(), "No help topic for "); ok {
		err = &usageError{"no command " + topic, "potrack"}
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "potrack: %s\nRun '%s --help' for usage.\n", ue.msg, ue.hint)
		return exitUsage
	}
	fmt.Fprintf(stderr, "potrack: %s\n", err)
	return 1
}

func newCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "potrack",
		Usage: "a self-hosted tracking server for affiliate programs",
		Description: "Run 'potrack serve' to start the server, 'potrack COMMAND --help' for a\n" +
			"command's flags. Every flag can also be set by the environment\n" +
			"variable shown next to it. Documentation: docs/ in the repository.",
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by run, not by the library as well.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		OnUsageError:   usageErrorOf,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() > 0 {
				return &usageError{fmt.Sprintf("unknown command %q", cmd.Args().First()), "potrack"}
			}
			return cli.ShowRootCommandHelp(cmd)
		},
		Commands: []*cli.Command{serveCommand(), checkCommand(), backupCommand(), migrateCommand(), versionCommand()},
	}
}

// invalidValue matches the flag package's `invalid value "abc" for flag
// -max-conns: strconv.ParseInt: …`, naming the package that refused it.
var invalidValue = regexp.MustCompile(`^invalid value "(.*)" for flag -+([a-z0-9-]+): (strconv|time)?`)

// usageErrorOf turns the library's flag errors ("flag provided but not
// defined: -x") into a usageError naming the command to ask for help.
func usageErrorOf(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	msg := err.Error()
	// Go's flag package names the flag with one dash and quotes its
	// parser; ours are spelled --flag, and the value's problem in words.
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		want := map[string]string{"strconv": "a whole number", "time": "a duration such as 30s or 2m"}[m[3]]
		if want == "" {
			want = "a valid value"
		}
		return &usageError{fmt.Sprintf("--%s must be %s, not %q", m[2], want, m[1]), cmd.FullName()}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		dashes := "--"
		if len(name) == 1 {
			dashes = "-"
		}
		msg = "unknown flag " + dashes + name
	}
	return &usageError{msg, cmd.FullName()}
}

// noArgs refuses positional arguments: `potrack serve extra --db X` must not
// run on the defaults.
func noArgs(cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s takes no arguments, got %q", cmd.FullName(), cmd.Args().First()), cmd.FullName()}
	}
	return nil
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:         "serve",
		Usage:        "run the server",
		OnUsageError: usageErrorOf,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: server.DefaultAddr, Sources: cli.EnvVars("POTRACK_ADDR"),
				Usage: "listen address"},
			&cli.StringFlag{Name: "db", Value: server.DefaultDB, Sources: cli.EnvVars("POTRACK_DB"),
				Usage: "SQLite database file (its folder is created), or postgres://user:password@host/database for several instances"},
			&cli.StringFlag{Name: "public-url", Sources: cli.EnvVars("POTRACK_PUBLIC_URL"),
				Usage: "URL browsers and gateways use to reach this server, e.g. https://track.example (default: the request's own)"},
			&cli.StringFlag{Name: "trusted-proxies", Sources: cli.EnvVars("POTRACK_TRUSTED_PROXIES"),
				Usage: "comma-separated CIDRs or IPs of reverse proxies whose X-Forwarded-For is believed"},
			&cli.StringFlag{Name: "admin-token", Sources: cli.EnvVars("POTRACK_ADMIN_TOKEN"),
				Usage: "admin token, 16 characters or more (default: generated on the first start and printed once)"},
			&cli.StringFlag{Name: "rate-limit-ip", Value: server.DefaultRateLimitIP, Sources: cli.EnvVars("POTRACK_RATE_LIMIT_IP"),
				Usage: "requests per client IP on /collect (N-S, N-M, N-H or N-D)"},
			&cli.StringFlag{Name: "rate-limit-program", Value: server.DefaultRateLimitProgram, Sources: cli.EnvVars("POTRACK_RATE_LIMIT_PROGRAM"),
				Usage: "requests per program on /collect"},
			&cli.StringFlag{Name: "redis", Sources: cli.EnvVars("POTRACK_REDIS"),
				Usage: "redis:// URL where every instance keeps the shared rate limits, e.g. redis://127.0.0.1:6379/0 (default: in memory, per instance)"},
			&cli.StringFlag{Name: "redis-prefix", Value: "potrack", Sources: cli.EnvVars("POTRACK_REDIS_PREFIX"),
				Usage: "start of every key potrack writes to Redis, so that several deployments can share one Redis"},
			&cli.BoolFlag{Name: "demo", Sources: cli.EnvVars("POTRACK_DEMO"),
				Usage: "seed a demo program, partner and shop pages into a new database"},
			&cli.IntFlag{Name: "max-conns", Sources: cli.EnvVars("POTRACK_MAX_CONNS"),
				Usage: "open client connections in all; 0 means 20000, or less to stay under the open-file limit"},
			&cli.IntFlag{Name: "max-conns-per-ip", Value: server.DefaultMaxConnsPerIP, Sources: cli.EnvVars("POTRACK_MAX_CONNS_PER_IP"),
				Usage: "open connections per client IP, 0 for no cap; trusted proxies are exempt"},
			&cli.DurationFlag{Name: "header-timeout", Value: server.DefaultHeaderTimeout, Sources: cli.EnvVars("POTRACK_HEADER_TIMEOUT"),
				Usage: "time for a request's headers to arrive (and for a new connection's first request)"},
			&cli.DurationFlag{Name: "body-timeout", Value: server.DefaultBodyTimeout, Sources: cli.EnvVars("POTRACK_BODY_TIMEOUT"),
				Usage: "time for a request's body to arrive after its headers"},
			&cli.DurationFlag{Name: "write-timeout", Value: server.DefaultWriteTimeout, Sources: cli.EnvVars("POTRACK_WRITE_TIMEOUT"),
				Usage: "time to write an answer"},
			&cli.DurationFlag{Name: "idle-timeout", Value: server.DefaultIdleTimeout, Sources: cli.EnvVars("POTRACK_IDLE_TIMEOUT"),
				Usage: "how long a keep-alive connection may wait for its next request"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			cfg := server.Config{
				Addr:             cmd.String("addr"),
				DB:               cmd.String("db"),
				PublicURL:        cmd.String("public-url"),
				AdminToken:       cmd.String("admin-token"),
				RateLimitIP:      cmd.String("rate-limit-ip"),
				RateLimitProgram: cmd.String("rate-limit-program"),
				Redis:            cmd.String("redis"),
				RedisPrefix:      cmd.String("redis-prefix"),
				Demo:             cmd.Bool("demo"),
				MaxConns:         int(cmd.Int("max-conns")),
				MaxConnsPerIP:    int(cmd.Int("max-conns-per-ip")),
				HeaderTimeout:    cmd.Duration("header-timeout"),
				BodyTimeout:      cmd.Duration("body-timeout"),
				WriteTimeout:     cmd.Duration("write-timeout"),
				IdleTimeout:      cmd.Duration("idle-timeout"),
			}
			for _, p := range strings.Split(cmd.String("trusted-proxies"), ",") {
				if p = strings.TrimSpace(p); p != "" {
					cfg.TrustedProxies = append(cfg.TrustedProxies, p)
				}
			}
			return serve(ctx, cfg, cmd.Root().Writer)
		},
	}
}

// errDamaged is check's answer for a database with problems: exit 1, the
// problems already printed.
var errDamaged = errors.New("the database has problems; restore a back-up")

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:         "check",
		Usage:        "check the database file's integrity (SQLite integrity_check), read only",
		OnUsageError: usageErrorOf,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: server.DefaultDB, Sources: cli.EnvVars("POTRACK_DB"),
				Usage: "SQLite database file"},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			out := cmd.Root().Writer
			problems, err := store.Check(cmd.String("db"))
			if err != nil {
				return err
			}
			if len(problems) == 0 {
				fmt.Fprintf(out, "%s: ok\n", cmd.String("db"))
				return nil
			}
			for _, p := range problems {
				fmt.Fprintln(out, p)
			}
			return errDamaged
		},
	}
}

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:         "backup",
		Usage:        "write a consistent copy of the database to a new file, while potrack runs",
		ArgsUsage:    "--to FILE",
		OnUsageError: usageErrorOf,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Value: server.DefaultDB, Sources: cli.EnvVars("POTRACK_DB"),
				Usage: "SQLite database file"},
			&cli.StringFlag{Name: "to", Sources: cli.EnvVars("POTRACK_BACKUP_TO"), Usage: "the back-up file to write; must not exist"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			to := cmd.String("to")
			if to == "" {
				return &usageError{"name the back-up file with --to, e.g. potrack backup --to potrack-" + time.Now().Format("2006-01-02") + ".db", cmd.FullName()}
			}
			// Ctrl-C stops the copy and removes what it wrote.
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			sum, err := store.Backup(ctx, cmd.String("db"), to)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.Root().Writer, "%s: %d programs, %d partners, %d customers, %d transactions (%d bytes), checked\n",
				to, sum.Programs, sum.Partners, sum.Customers, sum.Transactions, sum.Bytes)
			return err
		},
	}
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:         "migrate",
		Usage:        "copy a SQLite database into an empty PostgreSQL database (stop potrack first)",
		ArgsUsage:    "--to postgres://…",
		OnUsageError: usageErrorOf,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Value: server.DefaultDB, Sources: cli.EnvVars("POTRACK_DB"), Usage: "the SQLite database file to copy"},
			&cli.StringFlag{Name: "to", Sources: cli.EnvVars("POTRACK_MIGRATE_TO"), Usage: "the PostgreSQL database, e.g. postgres://potrack@db.internal/potrack; it must hold no potrack rows"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			to := cmd.String("to")
			if !strings.HasPrefix(to, "postgres://") && !strings.HasPrefix(to, "postgresql://") {
				return &usageError{"name the PostgreSQL database with --to postgres://user@host/database", cmd.FullName()}
			}
			counts, err := store.CopyToPostgres(ctx, cmd.String("from"), to)
			if err != nil {
				return err
			}
			out := cmd.Root().Writer
			for _, c := range counts {
				fmt.Fprintf(out, "%-16s %d rows\n", c.Table, c.Rows)
			}
			_, err = fmt.Fprintln(out, "copied and counted: every table holds as many rows as the source")
			return err
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:         "version",
		Usage:        "print the version and the commit it was built from",
		OnUsageError: usageErrorOf,
		Action: func(_ context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.Root().Writer, versionLine())
			return err
		},
	}
}

func serve(ctx context.Context, cfg server.Config, stdout io.Writer) error {
	// Bind first: on a busy port nothing is stored (a generated admin
	// token, the demo) and nothing claims to be running.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	st, err := store.Open(cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(cfg, st)
	if err != nil {
		return err
	}
	// The banner shows where to click and, when it was just generated, the
	// admin token: the one time it is known in clear.
	fmt.Fprint(stdout, srv.Banner())
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("POTRACK_CPUPROFILE"); path != "" {
		// For docs/performance.md: a CPU profile of the whole server
		// under load, written when it stops (%p in the name: the process id,
		// for several servers at once).
		f, err := os.Create(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
		if err != nil {
			return fmt.Errorf("POTRACK_CPUPROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("POTRACK_CPUPROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	slog.Info("potrack listening", "addr", ln.Addr().String(), "db", store.RedactURL(cfg.DB))
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	// Every accepted write has answered by now; Close commits nothing new
	// but waits for the writer to finish.
	return st.Close()
}
