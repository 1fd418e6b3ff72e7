package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Runner runs argv in pod's etcd container and returns what it printed.
// A command that ran and failed returns its output and an *ExitError.
type Runner func(ctx context.Context, pod EtcdPod, argv []string) (stdout, stderr []byte, err error)

// ExitError is a command in a pod that exited non-zero.
type ExitError struct {
	Pod    EtcdPod
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("in pod %s: exit code %d: %s", e.Pod, e.Code, strings.TrimSpace(e.Stderr))
}

// NewExecRunner runs commands through the API server's pods/exec, as
// `kubectl exec` does: websockets first, SPDY when the server does not
// upgrade to them.
func NewExecRunner(cfg *rest.Config, client kubernetes.Interface) Runner {
	return func(ctx context.Context, pod EtcdPod, argv []string) ([]byte, []byte, error) {
		if !pod.Running() {
			return nil, nil, errors.New(pod.NotRunning())
		}
		req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: pod.Container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		spdyExec, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, req.URL())
		if err != nil {
			return nil, nil, err
		}
		wsExec, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, req.URL().String())
		if err != nil {
			return nil, nil, err
		}
		exec, err := remotecommand.NewFallbackExecutor(wsExec, spdyExec, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return nil, nil, err
		}
		var stdout, stderr bytes.Buffer
		err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		var exit utilexec.ExitError
		switch {
		case err == nil:
			return stdout.Bytes(), stderr.Bytes(), nil
		case errors.As(err, &exit):
			return stdout.Bytes(), stderr.Bytes(), &ExitError{Pod: pod, Code: exit.ExitStatus(), Stderr: stderr.String()}
		case ctx.Err() != nil:
			return nil, nil, fmt.Errorf("exec in pod %s: %w", pod, ctx.Err())
		case strings.Contains(err.Error(), "error executing command in container"):
			// The runtime ran the command and failed it without an exit
			// code (a command not found, or a runtime such as KWOK's that
			// reports none): what the command printed says more.
			return stdout.Bytes(), stderr.Bytes(), &ExitError{Pod: pod, Code: -1, Stderr: stderr.String() + "\n" + err.Error()}
		}
		return nil, nil, APIError(err, "create", "pods/exec", pod.Namespace, pod.Name)
	}
}
