package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
)

// StartEmbedded starts the member described by an etcd configuration file
// inside this process, logging to logFile when it is not empty.
func StartEmbedded(configFile, logFile string) (*embed.Etcd, error) {
	cfg, err := embed.ConfigFromFile(configFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", configFile, err)
	}
	if logFile != "" {
		cfg.LogOutputs = []string{logFile}
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting member %s: %w", cfg.Name, err)
	}
	return e, nil
}

// RunMember runs one member in this process until ctx ends or the server
// fails. It is what `sandbox up` starts in the background for each member.
func RunMember(ctx context.Context, configFile string) error {
	e, err := StartEmbedded(configFile, "")
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return err
	}
}

// DefaultMembers is the size of a new sandbox when none is asked for.
const DefaultMembers = 3

// UpOptions says what `sandbox up` starts.
type UpOptions struct {
	Spec
	// Executable is the kubectl-etcd binary that runs each member
	// ("sandbox member --config FILE"); default: this program.
	Executable string
	// Timeout bounds the wait for every member to become healthy.
	Timeout time.Duration
	// Progress receives one line per step; may be nil.
	Progress io.Writer
}

// Up starts a sandbox cluster in the background, or restarts a stopped one
// found in the directory, and waits until every member is healthy.
func Up(ctx context.Context, opts UpOptions) (*State, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	s, err := Load(opts.Dir)
	switch {
	case err == nil:
		for _, m := range s.Members {
			if m.PID != 0 && isMemberProcess(m.PID, m.ConfigFile) {
				return nil, fmt.Errorf("the sandbox in %s is already running (member %s, pid %d): stop it with 'kubectl etcd sandbox down --dir %s'", s.Dir, m.Name, m.PID, opts.Dir)
			}
		}
		if opts.Members != 0 && opts.Members != len(s.Members) {
			return nil, fmt.Errorf("the sandbox in %s has %d members, not %d: remove it with 'kubectl etcd sandbox down --purge --dir %s' first", s.Dir, len(s.Members), opts.Members, opts.Dir)
		}
		fmt.Fprintf(progress, "Restarting the %d-member sandbox in %s\n", len(s.Members), s.Dir)
	case entriesIn(opts.Dir) > 0:
		return nil, fmt.Errorf("%s is not empty and holds no sandbox: name an empty or new directory", opts.Dir)
	default:
		if opts.Members == 0 {
			opts.Members = DefaultMembers
		}
		fmt.Fprintf(progress, "Creating certificates and configuration for %d members in %s\n", opts.Members, opts.Dir)
		if s, err = Prepare(opts.Spec); err != nil {
			return nil, err
		}
	}

	exe := opts.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	for i := range s.Members {
		m := &s.Members[i]
		pid, err := startMemberProcess(exe, *m)
		if err != nil {
			_ = stopMembers(s, 5*time.Second)
			return nil, err
		}
		m.PID = pid
		fmt.Fprintf(progress, "Started %s on %s (pid %d)\n", m.Name, m.ClientURL, pid)
	}
	if err := s.Save(); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, s, opts.Timeout); err != nil {
		_ = stopMembers(s, 5*time.Second)
		_ = s.Save()
		return nil, err
	}
	return s, nil
}

func entriesIn(dir string) int {
	entries, _ := os.ReadDir(dir)
	return len(entries)
}

func startMemberProcess(exe string, m Member) (int, error) {
	log, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	cmd := exec.Command(exe, "sandbox", "member", "--config", m.ConfigFile)
	cmd.Stdout = log
	cmd.Stderr = log
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", m.Name, err)
	}
	pid := cmd.Process.Pid
	// The member outlives this command; do not wait for it here.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}

func waitHealthy(ctx context.Context, s *State, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = time.Minute
	}
	cfg, err := s.Config()
	if err != nil {
		return err
	}
	gaveUp := false
	exited := func() error {
		if exited := exitedMembers(s); len(exited) > 0 {
			gaveUp = true
			return fmt.Errorf("sandbox members exited: %s\n%s", strings.Join(exited, ", "), logTails(s))
		}
		return nil
	}
	if err := cluster.WaitServing(ctx, cfg, cfg.Endpoints, timeout, exited); err != nil {
		if gaveUp || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("sandbox %w\n%s", err, logTails(s))
	}
	return nil
}

func exitedMembers(s *State) []string {
	var out []string
	for _, m := range s.Members {
		if m.PID != 0 && !isMemberProcess(m.PID, m.ConfigFile) {
			out = append(out, m.Name)
		}
	}
	return out
}

func logTails(s *State) string {
	var b strings.Builder
	for _, m := range s.Members {
		data, err := os.ReadFile(m.LogFile)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		fmt.Fprintf(&b, "last lines of %s:\n  %s\n", m.LogFile, strings.Join(lines, "\n  "))
	}
	return b.String()
}

// Down stops every member of the sandbox in dir and, with purge, removes
// the directory. It returns the names of the members it stopped.
func Down(dir string, purge bool, timeout time.Duration) ([]string, error) {
	s, err := Load(dir)
	if err != nil {
		if purge && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var stopped []string
	for _, m := range s.Members {
		if m.PID != 0 && isMemberProcess(m.PID, m.ConfigFile) {
			stopped = append(stopped, m.Name)
		}
	}
	if err := stopMembers(s, timeout); err != nil {
		return stopped, err
	}
	if purge {
		return stopped, os.RemoveAll(s.Dir)
	}
	return stopped, s.Save()
}

// stopMembers sends SIGTERM to every running member, waits, then kills
// what is left. Only processes that run this sandbox's member configuration
// are signalled, so a reused PID is never hit.
func stopMembers(s *State, timeout time.Duration) error {
	// Identify the members once, before signalling them: while a process
	// exits, its command line reads empty before it is gone, so from here on
	// the wait is for the PID itself to end.
	var stopping []*Member
	for i := range s.Members {
		m := &s.Members[i]
		if m.PID != 0 && isMemberProcess(m.PID, m.ConfigFile) {
			terminate(m.PID)
			stopping = append(stopping, m)
		}
	}
	deadline := time.Now().Add(timeout)
	for _, m := range stopping {
		for alive(m.PID) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(m.PID) {
			kill(m.PID)
			for j := 0; j < 100 && alive(m.PID); j++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if alive(m.PID) {
			return fmt.Errorf("member %s (pid %d) does not stop", m.Name, m.PID)
		}
	}
	for i := range s.Members {
		s.Members[i].PID = 0
	}
	return nil
}

// MemberState is one member as `sandbox status` reports it.
type MemberState struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	PID      int    `json:"pid,omitempty"`
	Running  bool   `json:"running"`
	Healthy  bool   `json:"healthy"`
	Error    string `json:"error,omitempty"`
}

// Inspect reports whether each member's process runs and is healthy.
func Inspect(ctx context.Context, dir string) (*State, []MemberState, error) {
	s, err := Load(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make([]MemberState, len(s.Members))
	byName := map[string]cluster.Health{}
	if cfg, err := s.Config(); err == nil {
		if cli, err := cfg.Client(); err == nil {
			if hs, err := cluster.CheckHealth(ctx, cfg, cli); err == nil {
				for _, h := range hs {
					byName[h.Name] = h
				}
			}
			cli.Close()
		}
	}
	for i, m := range s.Members {
		st := MemberState{Name: m.Name, Endpoint: m.ClientURL, Running: m.PID != 0 && isMemberProcess(m.PID, m.ConfigFile)}
		if st.Running {
			st.PID = m.PID
		}
		h, ok := byName[m.Name]
		switch {
		case !st.Running:
			st.Error = "not running"
		case !ok:
			st.Error = "not reachable"
		default:
			st.Healthy, st.Error = h.Healthy, h.Error
		}
		out[i] = st
	}
	return s, out, nil
}
