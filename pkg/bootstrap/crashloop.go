package bootstrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// crashLoopStarts is how many containers the kubelet must have created for
// the new etcd pod before a wait for it to serve gives up early: the
// fourth means three runs ended without serving (a first may fail for a
// passing reason, such as a port not free yet), about 70 s in with the
// kubelet's back-off of 10, 20 and 40 s; waiting out a --timeout of
// minutes would only delay the rollback.
const crashLoopStarts = 4

// defaultPodLogsDir is the kubelet's default podLogsDir, where a
// crash-looping etcd's own last words are.
const defaultPodLogsDir = "/var/log/pods"

// podLogsDir is where the kubelet keeps container logs: the podLogsDir of
// the configuration kubeadm writes for it in KubeletRootDir/config.yaml,
// else the kubelet's default.
func (n *Node) podLogsDir() string {
	if n.KubeletRootDir == "" {
		return defaultPodLogsDir
	}
	data, err := os.ReadFile(filepath.Join(n.KubeletRootDir, "config.yaml"))
	if err != nil {
		return defaultPodLogsDir
	}
	var c kubeletconfig.KubeletConfiguration
	if yaml.Unmarshal(data, &c) != nil || c.PodLogsDir == "" {
		return defaultPodLogsDir
	}
	return c.PodLogsDir
}

// staticPodContainerDirs are the kubelet's directories of the containers
// named container of every static pod it knows, keyed by pod UID. Static
// pods have UIDs without dashes (hashes of their manifests); API pods'
// UIDs have dashes.
func (n *Node) staticPodContainerDirs(container string) map[string]string {
	if n.KubeletRootDir == "" {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join(n.KubeletRootDir, "pods", "*", "containers", container))
	byUID := map[string]string{}
	for _, d := range dirs {
		if uid := filepath.Base(filepath.Dir(filepath.Dir(d))); !strings.Contains(uid, "-") {
			byUID[uid] = d
		}
	}
	return byUID
}

// containerStarts counts the containers named container the kubelet
// created since since, for the static pod with the most: it makes one
// termination-message file in KubeletRootDir/pods/UID/containers/NAME for
// each container it creates, restarts included, and nothing else writes
// there.
func (n *Node) containerStarts(container string, since time.Time) (starts int, uid string) {
	for u, dir := range n.staticPodContainerDirs(container) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		count := 0
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && !info.ModTime().Before(since) {
				count++
			}
		}
		if count > starts {
			starts, uid = count, u
		}
	}
	return starts, uid
}

// giveUpOnCrashLoop is a give-up check for cluster.WaitServing on an etcd
// static pod whose manifest went in at since: it ends the wait once the
// kubelet has created crashLoopStarts of its etcd containers (the
// container name kubeadm and init give it), with the container's last error
// from its log (podLogsDir). Without
// KubeletRootDir it never gives up.
func (n *Node) giveUpOnCrashLoop(since time.Time) func() error {
	const container = "etcd"
	return func() error {
		starts, uid := n.containerStarts(container, since)
		if starts < crashLoopStarts {
			return nil
		}
		return fmt.Errorf("the kubelet has started the %s container %d times since %s and it never served: it is crash-looping (static pod UID %s)%s",
			container, starts, since.Format(time.TimeOnly), uid, lastWords(n.podLogsDir(), uid, container))
	}
}

// lastWords is what the container said last before it ended, from the
// newest finished log in the kubelet's podLogsDir, as one line to append
// to an error; where there is no such log, the commands that show it.
func lastWords(podLogsDir, uid, container string) string {
	hint := fmt.Sprintf("; its log: 'crictl ps -a --name %s' then 'crictl logs CONTAINER-ID'", container)
	logs, _ := filepath.Glob(filepath.Join(podLogsDir, "*_"+uid, container, "*.log"))
	if len(logs) < 2 {
		return hint
	}
	// N.log is the Nth restart's; the newest may still be written to, the
	// one before it is a whole run that ended.
	newest := -1
	for _, l := range logs {
		if i, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(l), ".log")); err == nil && i > newest {
			newest = i
		}
	}
	if newest < 1 {
		return hint
	}
	previous := filepath.Join(filepath.Dir(logs[0]), strconv.Itoa(newest-1)+".log")
	data, err := os.ReadFile(previous)
	if err != nil {
		return hint
	}
	words := lastError(data)
	if words == "" {
		return hint
	}
	const most = 300
	if len(words) > most {
		words = words[:most] + "..."
	}
	return fmt.Sprintf("; its last words (%s): %s", previous, words)
}

// lastError is the last error of a container log as the kubelet writes it
// (lines "TIME STREAM TAG CONTENT"): the nearest the end of etcd's JSON
// entries at level error or above, as "msg: error", or a Go panic's first
// line; else the last line.
func lastError(log []byte) string {
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		fields := strings.SplitN(lines[i], " ", 4)
		if len(fields) < 4 {
			continue
		}
		content := fields[3]
		if last == "" {
			last = content
		}
		if strings.HasPrefix(content, "panic: ") {
			return content
		}
		var entry struct{ Level, Msg, Error string }
		if json.Unmarshal([]byte(content), &entry) != nil {
			continue
		}
		switch entry.Level {
		case "error", "dpanic", "panic", "fatal":
			if entry.Error == "" {
				return entry.Msg
			}
			return entry.Msg + ": " + entry.Error
		}
	}
	return last
}
