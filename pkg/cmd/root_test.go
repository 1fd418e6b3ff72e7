package cmd_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-etcd/kubectl-etcd/internal/cmdtest"
	"github.com/kubectl-etcd/kubectl-etcd/internal/etcdtest"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	cmdutil "github.com/kubectl-etcd/kubectl-etcd/pkg/cmd/util"
)

func TestStatusHealthAndMemberListAgainstEmbeddedCluster(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()

	out, _, code, err := cmdtest.Run(t, append(conn, "status", "-o", "json")...)
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

	out, _, _, err = cmdtest.Run(t, append(conn, "member", "list")...)
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
	out, _, code, err = cmdtest.Run(t, append(conn, "health")...)
	if code != cmdutil.ExitUnhealthy {
		t.Fatalf("health with a member down exited %d (%v), want %d", code, err, cmdutil.ExitUnhealthy)
	}
	if !strings.Contains(err.Error(), "1 of 3 members unhealthy: member-2") {
		t.Errorf("health error %q should name the unhealthy member", err)
	}
	if !strings.Contains(out, "connection refused") {
		t.Errorf("health table should give the reason:\n%s", out)
	}

	_, _, code, err = cmdtest.Run(t, append(conn, "status")...)
	if code != cmdutil.ExitUnhealthy || !strings.Contains(err.Error(), "member-2") {
		t.Errorf("status with a member down: exit %d, %v; want %d naming member-2", code, err, cmdutil.ExitUnhealthy)
	}
}

func TestProfileIsWritten(t *testing.T) {
	for _, name := range []string{"cpu", "heap"} {
		file := filepath.Join(t.TempDir(), name+".pprof")
		if _, _, code, err := cmdtest.Run(t, "version", "--client", "--profile", name, "--profile-output", file); code != 0 {
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
			_, _, code, err := cmdtest.Run(t, tt.args...)
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

// indentUnit is the indentation of the first indented line of a document.
func indentUnit(doc string) string {
	for _, line := range strings.Split(doc, "\n") {
		if trimmed := strings.TrimLeft(line, " "); trimmed != line {
			return line[:len(line)-len(trimmed)]
		}
	}
	return ""
}

func TestOutputTemplatesAndJSONAsGet(t *testing.T) {
	c := etcdtest.StartEmbedded(t)
	conn := c.ConnectArgs()
	put(t, c.Client(), "/registry/configmaps/default/app", encode(t, cm("default", "app", "x")))
	run := func(args ...string) string {
		t.Helper()
		out, _ := cmdtest.MustRun(t, append(append([]string{}, conn...), args...)...)
		return out
	}

	t.Log("status -o json indents as get -o json does (kubectl's four spaces)")
	statusJSON, getJSON := run("status", "-o", "json"), run("get", "configmaps", "app", "-o", "json")
	if indentUnit(statusJSON) != "    " || indentUnit(statusJSON) != indentUnit(getJSON) {
		t.Errorf("status -o json indents %q, get -o json %q; want four spaces for both:\n%s\n%s", indentUnit(statusJSON), indentUnit(getJSON), statusJSON, getJSON)
	}

	t.Log("-o jsonpath= and -o go-template= read the fields -o json shows")
	if got := run("status", "-o", "jsonpath={[*].name}"); got != "member-1 member-2 member-3" {
		t.Errorf("status -o jsonpath: %q", got)
	}
	if got := run("member", "list", "-o", `jsonpath={[?(@.leader==true)].name}`); !strings.HasPrefix(got, "member-") || strings.Contains(got, " ") {
		t.Errorf("member list -o jsonpath for the leader: %q, want one member", got)
	}
	out := run("health", "-o", `go-template={{range .}}{{.name}} {{.healthy}}{{"\n"}}{{end}}`)
	if out != "member-1 true\nmember-2 true\nmember-3 true\n" {
		t.Errorf("health -o go-template:\n%s", out)
	}
	tmpl := filepath.Join(t.TempDir(), "versions.tmpl")
	if err := os.WriteFile(tmpl, []byte(`{{range .members}}{{.name}}={{.version}} {{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run("version", "-o", "go-template-file="+tmpl); strings.Count(got, "=3.7.3 ") != 3 {
		t.Errorf("version -o go-template-file: %q", got)
	}

	t.Log("--no-headers drops the header row only")
	if out := run("member", "list", "--no-headers"); len(strings.Split(strings.TrimSpace(out), "\n")) != 3 || strings.Contains(out, "PEER URLS") {
		t.Errorf("member list --no-headers:\n%s", out)
	}

	t.Log("a broken template is a usage error before anything is asked of etcd")
	for _, args := range [][]string{
		{"status", "-o", "jsonpath={.name"},
		{"doctor", "-o", "go-template={{.x"},
		{"alarm", "list", "-o", "jsonpath"},
		{"defrag", "-o", "go-template-file=/nonexistent.tmpl"},
	} {
		_, _, code, err := cmdtest.Run(t, append(append([]string{}, conn...), args...)...)
		if code != 1 || err == nil || !strings.Contains(err.Error(), "-o ") {
			t.Errorf("%v: exit %d, %v; want an error about -o", args, code, err)
		}
		var ue *cmdutil.UsageError
		if args[0] != "defrag" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), "See 'kubectl etcd "+strings.Join(args[:len(args)-2], " ")+" -h'")) {
			t.Errorf("%v: %v is not a usage error with the help hint", args, err)
		}
	}
}
