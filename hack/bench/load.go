package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/connect"
)

// writeLoad is what the write-load process reports when it stops.
type writeLoad struct {
	Writes int           `json:"writes"`
	Failed int           `json:"failed"`
	P50    time.Duration `json:"p50"`
	P99    time.Duration `json:"p99"`
	Max    time.Duration `json:"max"`
	// FirstError is the first failure, for the reader of the report.
	FirstError string `json:"firstError,omitempty"`
}

// runWriteLoad is the separate process that writes at a steady rate while
// a defragmentation runs: one put of 1 KiB every 1/rate seconds, each on
// its own (open loop: a stalled write does not delay the next), with a
// 5-second deadline, as a controller's write would have. It stops on
// SIGTERM and prints its report as JSON.
func runWriteLoad(rate int) error {
	cfg, err := connect.NewConfig(strings.Split(os.Getenv("ETCDCTL_ENDPOINTS"), ","), os.Getenv("ETCDCTL_CACERT"), os.Getenv("ETCDCTL_CERT"), os.Getenv("ETCDCTL_KEY"))
	if err != nil {
		return err
	}
	// Health-checked: with StopGRPCServiceOnDefrag on the members, writes
	// go to the members that are not defragmenting.
	cli, err := cfg.HealthCheckedClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		report    writeLoad
		wg        sync.WaitGroup
	)
	value := strings.Repeat("v", 1024)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				start := time.Now()
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := cli.Put(rctx, fmt.Sprintf("%s/key-%04d", loadPrefix, i%1000), value)
				cancel()
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				report.Writes++
				latencies = append(latencies, d)
				if err != nil {
					report.Failed++
					if report.FirstError == "" {
						report.FirstError = err.Error()
					}
				}
			}(i)
			continue
		}
		break
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if n := len(latencies); n > 0 {
		report.P50 = latencies[n/2]
		report.P99 = latencies[min(n-1, n*99/100)]
		report.Max = latencies[n-1]
	}
	return json.NewEncoder(os.Stdout).Encode(report)
}
