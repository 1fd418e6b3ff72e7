package kube

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Tunnel forwards a local loopback port to one etcd member's pod through
// the API server, as `kubectl port-forward` does. It differs from
// client-go's PortForwarder in two ways a long etcd operation needs: a
// connection the member refuses (a member that is down) does not tear the
// tunnel down, and a tunnel that drops (API server restart, kubelet
// restart, idle proxy) is dialled again once before it fails for good.
type Tunnel struct {
	Pod EtcdPod
	// RemotePort is the port in the pod: the member's client port.
	RemotePort int
	// LocalURL is the https:// URL on 127.0.0.1 that reaches the member.
	LocalURL string

	dial     func() (httpstream.Connection, error)
	listener net.Listener
	log      func(format string, args ...any)

	mu        sync.Mutex
	conn      httpstream.Connection
	redialled bool
	failed    error
	lastErr   error
	requestID int
	closed    bool
	done      chan struct{}
	locals    map[net.Conn]struct{}
	handlers  sync.WaitGroup
}

// portForwardDialer dials pod's portforward subresource the way kubectl
// does: websockets first, SPDY when the server does not upgrade to them.
func portForwardDialer(cfg *rest.Config, client kubernetes.Interface, pod EtcdPod) (httpstream.Dialer, error) {
	u := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		return nil, err
	}
	return portforward.NewFallbackDialer(ws, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	}), nil
}

// OpenTunnel dials pod's port remotePort through the API server and
// listens on a free loopback port. The first dial happens here, so a
// refusal (RBAC, a pod that is gone) is returned at once.
func OpenTunnel(cfg *rest.Config, client kubernetes.Interface, pod EtcdPod, remotePort int, log func(string, ...any)) (*Tunnel, error) {
	if !pod.Running() {
		return nil, errors.New(pod.NotRunning())
	}
	dialer, err := portForwardDialer(cfg, client, pod)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: %w", pod, err)
	}
	t := &Tunnel{Pod: pod, RemotePort: remotePort, log: log, done: make(chan struct{}), locals: map[net.Conn]struct{}{}}
	if t.log == nil {
		t.log = func(string, ...any) {}
	}
	t.dial = func() (httpstream.Connection, error) {
		conn, protocol, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err != nil {
			return nil, APIError(err, "create", "pods/portforward", pod.Namespace, pod.Name)
		}
		if protocol != portforward.PortForwardProtocolV1Name {
			conn.Close()
			return nil, fmt.Errorf("port-forward to pod %s: the server speaks %q, not %q", pod, protocol, portforward.PortForwardProtocolV1Name)
		}
		return conn, nil
	}
	if t.conn, err = t.dial(); err != nil {
		return nil, err
	}
	t.listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.conn.Close()
		return nil, fmt.Errorf("port-forward to pod %s: listening on loopback: %w", pod, err)
	}
	t.LocalURL = "https://" + t.listener.Addr().String()
	go t.accept()
	return t, nil
}

func (t *Tunnel) accept() {
	for {
		local, err := t.listener.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			local.Close()
			return
		}
		t.locals[local] = struct{}{}
		t.mu.Unlock()
		t.handlers.Add(1)
		go func() {
			defer t.handlers.Done()
			t.handle(local)
			t.mu.Lock()
			delete(t.locals, local)
			t.mu.Unlock()
		}()
	}
}

// connection returns the live connection to the pod, dialling again once
// after a drop.
func (t *Tunnel) connection(broken httpstream.Connection) (httpstream.Connection, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed != nil {
		return nil, t.failed
	}
	if t.closed {
		return nil, errors.New("tunnel closed")
	}
	if t.conn != nil && t.conn == broken {
		t.conn.Close()
	}
	if t.conn != nil {
		select {
		case <-t.conn.CloseChan():
		default:
			return t.conn, nil
		}
	}
	t.conn = nil
	if t.redialled {
		t.failed = fmt.Errorf("port-forward to etcd pod %s dropped twice: the API server or the node's kubelet closed the tunnel; check that the pod still runs (kubectl -n %s get pod %s) and try again", t.Pod, t.Pod.Namespace, t.Pod.Name)
		return nil, t.failed
	}
	t.redialled = true
	t.log("port-forward to pod %s dropped; dialling it again (once)", t.Pod)
	conn, err := t.dial()
	if err != nil {
		t.failed = fmt.Errorf("port-forward to etcd pod %s dropped and could not be opened again: %w", t.Pod, err)
		return nil, t.failed
	}
	t.conn = conn
	return conn, nil
}

// streams opens the error and data streams of one forwarded connection.
func (t *Tunnel) streams() (httpstream.Connection, httpstream.Stream, httpstream.Stream, error) {
	var broken httpstream.Connection
	for attempt := 0; attempt < 2; attempt++ {
		conn, err := t.connection(broken)
		if err != nil {
			return nil, nil, nil, err
		}
		t.mu.Lock()
		id := t.requestID
		t.requestID++
		t.mu.Unlock()
		headers := http.Header{}
		headers.Set(corev1.StreamType, corev1.StreamTypeError)
		headers.Set(corev1.PortHeader, strconv.Itoa(t.RemotePort))
		headers.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(id))
		errStream, err := t.createStream(conn, headers)
		if err != nil {
			broken = conn
			continue
		}
		// Nothing is written to the error stream.
		errStream.Close()
		headers.Set(corev1.StreamType, corev1.StreamTypeData)
		data, err := t.createStream(conn, headers)
		if err != nil {
			conn.RemoveStreams(errStream)
			broken = conn
			continue
		}
		return conn, errStream, data, nil
	}
	return nil, nil, nil, fmt.Errorf("port-forward to etcd pod %s: cannot open a stream", t.Pod)
}

// createStream gives up on a connection that closes while a stream is
// being created: spdystream waits for the reply until its timeout (30s)
// even when the connection is gone.
func (t *Tunnel) createStream(conn httpstream.Connection, headers http.Header) (httpstream.Stream, error) {
	type created struct {
		stream httpstream.Stream
		err    error
	}
	ch := make(chan created, 1)
	go func() {
		s, err := conn.CreateStream(headers)
		ch <- created{s, err}
	}()
	select {
	case c := <-ch:
		return c.stream, c.err
	case <-conn.CloseChan():
		return nil, errors.New("connection to the pod closed")
	case <-t.done:
		return nil, errors.New("tunnel closed")
	}
}

func (t *Tunnel) handle(local net.Conn) {
	defer local.Close()
	conn, errStream, data, err := t.streams()
	if err != nil {
		t.setLastErr(err)
		return
	}
	defer conn.RemoveStreams(errStream, data)
	errMsg := make(chan []byte, 1)
	go func() {
		msg, _ := io.ReadAll(errStream)
		errMsg <- msg
	}()
	remoteDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(local, data)
		close(remoteDone)
	}()
	localDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(data, local)
		// Tell the pod this side has finished sending.
		data.Close()
		close(localDone)
	}()
	select {
	case <-remoteDone:
	case <-localDone:
		<-remoteDone
	}
	_ = data.Reset()
	if msg := <-errMsg; len(msg) > 0 {
		t.setLastErr(fmt.Errorf("port-forward to pod %s port %d: %s", t.Pod, t.RemotePort, strings.TrimSpace(string(msg))))
	}
}

func (t *Tunnel) setLastErr(err error) {
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
}

// LastError is the most recent failure of a forwarded connection (the
// member refused it, the tunnel failed), nil when there was none. Probe
// errors name it, since through a tunnel every failure looks like a
// closed connection.
func (t *Tunnel) LastError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// Err is the tunnel's failure after its one reconnect, nil while it works.
func (t *Tunnel) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Close stops listening and closes the connection to the pod.
func (t *Tunnel) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.done)
	conn := t.conn
	for local := range t.locals {
		local.Close()
	}
	t.mu.Unlock()
	t.listener.Close()
	if conn != nil {
		conn.Close()
	}
	t.handlers.Wait()
}

// Drop closes the tunnel's connection to the pod as a failing API server
// would, for tests of the reconnect.
func (t *Tunnel) Drop() {
	t.mu.Lock()
	conn := t.conn
	t.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// PortOf returns the port of an etcd client URL, 2379 when it names none.
func PortOf(clientURL string) (int, error) {
	u, err := url.Parse(clientURL)
	if err != nil {
		return 0, fmt.Errorf("client URL %q: %w", clientURL, err)
	}
	if u.Port() == "" {
		return 2379, nil
	}
	return strconv.Atoi(u.Port())
}
