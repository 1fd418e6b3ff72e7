package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cmd"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

// run executes the real root command in process and returns its output and
// the exit code main would use.
func run(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cmd.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), cmdutil.ExitCode(err), err
}

func TestStatusHealthAndMemberListAgainstEmbeddedCluster(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()

	out, _, code, err := run(t, append(conn, "status", "-o", "json")...)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var statuses []cluster.MemberStatus
	if err := json.Unmarshal([]byte(out), &statuses); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out)
	}
	if len(statuses) != 3 || code != 0 {
		t.Fatalf("status: %d members, exit %d; want 3 and 0", len(statuses), code)
	}

	out, _, _, err = run(t, append(conn, "member", "list")...)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") {
		t.Errorf("member list printed\n%s\nwant a header and three rows", out)
	}
	if strings.Count(out, " true ") < 3 {
		t.Errorf("member list should show every member started and one leader:\n%s", out)
	}

	c.Stop(1)
	out, _, code, err = run(t, append(conn, "health")...)
	if code != cmdutil.ExitUnhealthy {
		t.Fatalf("health with a member down exited %d (%v), want %d", code, err, cmdutil.ExitUnhealthy)
	}
	if !strings.Contains(err.Error(), "1 of 3 members unhealthy: member-2") {
		t.Errorf("health error %q should name the unhealthy member", err)
	}
	if !strings.Contains(out, "connection refused") {
		t.Errorf("health table should give the reason:\n%s", out)
	}

	_, _, code, err = run(t, append(conn, "status")...)
	if code != cmdutil.ExitUnhealthy || !strings.Contains(err.Error(), "member-2") {
		t.Errorf("status with a member down: exit %d, %v; want %d naming member-2", code, err, cmdutil.ExitUnhealthy)
	}
}

func TestProfileIsWritten(t *testing.T) {
	for _, name := range []string{"cpu", "heap"} {
		file := filepath.Join(t.TempDir(), name+".pprof")
		if _, _, code, err := run(t, "version", "--client", "--profile", name, "--profile-output", file); code != 0 {
			t.Fatalf("--profile %s: exit %d, %v", name, code, err)
		}
		if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
			t.Errorf("--profile %s wrote no profile to %s: %v", name, file, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"status", "extra"}, `unknown command "extra"`},
		{[]string{"health", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"sandbox", "up"}, "--dir is required"},
		{[]string{"sandbox", "up", "--dir", "x", "--members", "2"}, "--members must be 1 or 3"},
		{[]string{"get", "pods", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"get", "/registry/pods/", "--prefix", "-A"}, "-A lists a resource"},
		{[]string{"get", "pods", "web", "-A"}, "drop -A"},
		{[]string{"get", "/a", "b"}, "a key takes no second argument"},
		{[]string{"get", "pods", "--storage-prefix", "registry"}, "must start with /"},
		{[]string{"get", "pods", "--snapshot", "/nonexistent.db"}, "no such file"},
		{[]string{"put", "/k"}, "give either VALUE or -f FILE"},
		{[]string{"decode", "-o", "table"}, `unknown output format "table"`},
		{[]string{"encode"}, "-f is required"},
		{[]string{"stats", "-o", "wide"}, `unknown output format "wide"`},
		{[]string{"watch", "/k", "-o", "yaml"}, `unknown output format "yaml"`},
		{[]string{"version", "--client", "--profile", "block"}, `unknown --profile "block"`},
		{[]string{"snapshot", "save", "x.db", "--verify", "some"}, `unknown --verify "some"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, code, err := run(t, tt.args...)
			if code == 0 || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, error %v; want non-zero with %q", code, err, tt.want)
			}
			var ue *cmdutil.UsageError
			if errors.As(err, &ue) && !strings.Contains(err.Error(), "See 'kubectl etcd ") {
				t.Errorf("usage error %q lacks the help hint", err)
			}
		})
	}
}
