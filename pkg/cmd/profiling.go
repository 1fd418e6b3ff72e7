package cmd

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// profiling is kubectl's --profile and --profile-output: a pprof profile
// of one command, to measure where its time or memory goes.
type profiling struct {
	name, output string
	cpu          *os.File
}

func (p *profiling) addFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&p.name, "profile", "none", "name of profile to capture: none, cpu, heap, allocs")
	cmd.PersistentFlags().StringVar(&p.output, "profile-output", "profile.pprof", "name of the file to write the profile to")
}

// start begins a CPU profile; the others are taken by stop.
func (p *profiling) start() error {
	switch p.name {
	case "none", "heap", "allocs":
		return nil
	case "cpu":
		f, err := os.Create(p.output)
		if err != nil {
			return err
		}
		p.cpu = f
		return pprof.StartCPUProfile(f)
	}
	return fmt.Errorf("unknown --profile %q: use none, cpu, heap or allocs", p.name)
}

// stop ends the CPU profile or writes the memory profile.
func (p *profiling) stop() error {
	if p.cpu != nil {
		pprof.StopCPUProfile()
		return p.cpu.Close()
	}
	if p.name != "heap" && p.name != "allocs" {
		return nil
	}
	f, err := os.Create(p.output)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup(p.name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
