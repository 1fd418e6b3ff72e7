package main

import (
	"bytes"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// feed writes data to c in chunks of size and returns the final count.
func feed(c eventCounter, data []byte, size int) int64 {
	var n int64
	for len(data) > 0 {
		k := min(size, len(data))
		n = c.add(data[:k])
		data = data[k:]
	}
	return n
}

func TestWatchResponseCounter(t *testing.T) {
	var stream []byte
	want := 0
	for r := range 5 {
		wr := pb.WatchResponse{Header: &pb.ResponseHeader{Revision: int64(1000 + r), ClusterId: 1 << 60}, WatchId: 7}
		for i := range r * 3 {
			wr.Events = append(wr.Events, &mvccpb.Event{Kv: &mvccpb.KeyValue{
				Key: fmt.Appendf(nil, "/registry/pods/ns/p-%d", i), Value: bytes.Repeat([]byte{0x0a, 0x5a}, 100*i),
				CreateRevision: int64(i + 1), ModRevision: int64(i + 1), Version: 1}})
			want++
		}
		b, err := proto.Marshal(&wr)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	for _, size := range []int{1, 2, 3, 7, 64, 333, len(stream)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if got := feed(&watchResponseCounter{}, stream, size); got != int64(want) {
				t.Errorf("got %d events, want %d", got, want)
			}
		})
	}
}

func TestWatchTextCounter(t *testing.T) {
	text := []byte("ADDED /registry/pods/a/b (revision 5)\napiVersion: v1\nkind: Pod\nmetadata:\n  name: ADDED b\n" +
		"MODIFIED /registry/pods/a/b (revision 6)\nvalue\nDELETED /k (revision 7)\nADDED\nDELETED /registry/x (revision 8)\n")
	for _, size := range []int{1, 2, 5, 9, 10, 64, len(text)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if got := feed(&watchTextCounter{}, text, size); got != 4 {
				t.Errorf("got %d events, want 4", got)
			}
		})
	}
}
