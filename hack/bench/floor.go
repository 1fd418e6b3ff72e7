package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
)

// listingCPU is where one listing's CPU went, and what writing its text
// alone costs: the floor no rendering, however cheap, goes below.
type listingCPU struct {
	Listing string  `json:"listing"`
	Wall    float64 `json:"wallSeconds"`
	// Command, Machine and Reader are medians of run's fields.
	Command float64 `json:"commandCPUSeconds"`
	Machine float64 `json:"machineCPUSeconds"`
	Reader  float64 `json:"readerCPUSeconds"`
	Out     int64   `json:"outputBytes"`
	// AloneWall and AloneCPU are the wall time and the CPU (writer and
	// reader) of writing Out bytes through the same pipe with nothing
	// else to do (bench -write-bytes).
	AloneWall float64 `json:"aloneWallSeconds"`
	AloneCPU  float64 `json:"aloneCPUSeconds"`
	// Floor is the least wall-time ratio to -o raw this listing could
	// reach if its rendering cost nothing; 0 for -o raw itself.
	Floor float64 `json:"floorRatio,omitempty"`
}

// writeBytes is the -write-bytes process: n bytes to standard output in
// 256 KiB writes, as the plugin's buffered output writes them.
func writeBytes(n int64) error {
	chunk := bytes.Repeat([]byte("        image: registry.k8s.io/pause:3.10\n"), (256<<10)/42+1)[:256<<10]
	for n > 0 {
		w := chunk[:min(n, int64(len(chunk)))]
		if _, err := os.Stdout.Write(w); err != nil {
			return err
		}
		n -= int64(len(w))
	}
	return nil
}

// listingFloors measures, for each listing of formats (samples[i] the
// runs of formats[i]; formats[0] is raw), what writing its text alone
// costs, and derives each format's floor against raw. The fetch is the
// same whatever the format; a format's extra text costs its extra
// writing and reading, at least, on top of raw's whole machine CPU, and
// the machine has only runtime.NumCPU() processors to spend it on:
//
//	floor = max(1, (machine CPU of raw + alone CPU of the format's text
//	        - alone CPU of raw's) / (CPUs x wall of raw))
func listingFloors(ctx context.Context, env []string, reps int, n int, formats []string, samples []sample, progress io.Writer) ([]listingCPU, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	tools := make([]tool, len(formats))
	for i, s := range samples {
		out := s.out()
		tools[i] = tool{Name: fmt.Sprintf("%d MiB alone (-o %s)", out>>20, formats[i]),
			Args: []string{self, "-write-bytes", strconv.FormatInt(out, 10)}}
	}
	fmt.Fprintf(progress, "== each listing's text written alone through the same pipe\n")
	alone, err := rotate(ctx, env, reps, tools, progress)
	if err != nil {
		return nil, fmt.Errorf("writing %d pods' text alone: %w", n, err)
	}
	aloneCPU := func(s sample) float64 { return s.cpu() + s.reader() }
	rows := make([]listingCPU, len(formats))
	for i, s := range samples {
		rows[i] = listingCPU{
			Listing: fmt.Sprintf("%d pods -o %s", n, formats[i]),
			Wall:    s.wall(), Command: s.cpu(), Machine: s.machine(), Reader: s.reader(), Out: s.out(),
			AloneWall: alone[i].wall(), AloneCPU: aloneCPU(alone[i]),
		}
		if i > 0 {
			need := samples[0].machine() + aloneCPU(alone[i]) - aloneCPU(alone[0])
			rows[i].Floor = max(1, need/(float64(runtime.NumCPU())*samples[0].wall()))
		}
	}
	return rows, nil
}
