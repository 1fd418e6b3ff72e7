// Package maintenance keeps an etcd cluster's storage in shape: rolling
// defragmentation, compaction, alarms (and recovery from NOSPACE), and a
// check that every member holds the same data. It knows nothing of cobra;
// commands call it with a connection and print what it reports.
package maintenance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/cluster"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/output"
)

// DefaultRule is the rule `kubectl etcd defrag` applies when none is given:
// a member whose database is over 80% of its quota, or holds more than
// 200 MiB of free pages that defragmentation would give back.
const DefaultRule = "dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*MiB"

// RuleVariables documents what a rule can use, for help text.
const RuleVariables = `dbSize, dbSizeInUse, dbFree (dbSize - dbSizeInUse) and dbQuota in bytes;
dbQuotaUsage (dbSize / dbQuota) and dbFreeRatio (dbFree / dbSize) from 0 to 1;
leader and learner (booleans); name (the member name); KiB, MiB and GiB.`

// Rule is a compiled expression that decides whether a member needs
// defragmentation, from the sizes its Status reports.
type Rule struct {
	Source  string
	program *vm.Program
}

// ruleEnv is what a rule sees of one member.
func ruleEnv(s cluster.MemberStatus) map[string]any {
	var usage, freeRatio float64
	free := s.DBSize - s.DBSizeInUse
	if s.DBQuota > 0 {
		usage = float64(s.DBSize) / float64(s.DBQuota)
	}
	if s.DBSize > 0 {
		freeRatio = float64(free) / float64(s.DBSize)
	}
	return map[string]any{
		"name":         s.Name,
		"dbSize":       s.DBSize,
		"dbSizeInUse":  s.DBSizeInUse,
		"dbFree":       free,
		"dbQuota":      s.DBQuota,
		"dbQuotaUsage": usage,
		"dbFreeRatio":  freeRatio,
		"leader":       s.Leader,
		"learner":      s.Learner,
		"KiB":          int64(1 << 10),
		"MiB":          int64(1 << 20),
		"GiB":          int64(1 << 30),
	}
}

// CompileRule checks a rule once, so a typo or an unknown variable is
// reported before anything runs.
func CompileRule(src string) (*Rule, error) {
	p, err := expr.Compile(src, expr.Env(ruleEnv(cluster.MemberStatus{})), expr.AsBool())
	if err != nil {
		// expr's own message spans lines (a snippet with a caret); errors
		// here are one line.
		msg := err.Error()
		var fe *file.Error
		if errors.As(err, &fe) {
			msg = fmt.Sprintf("%s at column %d", fe.Message, fe.Column+1)
		}
		return nil, fmt.Errorf("rule %q: %s (variables: %s)", src, msg, strings.Join(strings.Fields(RuleVariables), " "))
	}
	return &Rule{Source: src, program: p}, nil
}

// Eval says whether the member needs defragmentation and why, in words
// that name the numbers the rule saw.
func (r *Rule) Eval(s cluster.MemberStatus) (bool, string, error) {
	out, err := expr.Run(r.program, ruleEnv(s))
	if err != nil {
		return false, "", fmt.Errorf("rule %q on %s: %w", r.Source, s.Name, err)
	}
	need, _ := out.(bool)
	verdict := "does not match rule"
	if need {
		verdict = "matches rule"
	}
	return need, Describe(s) + ": " + verdict, nil
}

// Describe sums up a member's storage: size, free pages, quota usage.
func Describe(s cluster.MemberStatus) string {
	d := fmt.Sprintf("%s, %s free", output.Bytes(s.DBSize), output.Bytes(s.DBSize-s.DBSizeInUse))
	if s.DBQuota > 0 {
		d += fmt.Sprintf(", %.0f%% of quota", 100*float64(s.DBSize)/float64(s.DBQuota))
	}
	return d
}
