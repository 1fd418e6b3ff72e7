package staticpod

import (
	"slices"
	"testing"
)

func TestSetFlag(t *testing.T) {
	tests := []struct {
		name          string
		command, args []string
		flag, value   string
		wantCommand   []string
		wantArgs      []string
	}{
		{"replace --flag=value", []string{"etcd", "--name=a", "--data-dir=/var/lib/etcd"}, nil, "data-dir", "/x",
			[]string{"etcd", "--name=a", "--data-dir=/x"}, nil},
		{"replace --flag value", []string{"etcd", "--data-dir", "/var/lib/etcd", "--name=a"}, nil, "data-dir", "/x",
			[]string{"etcd", "--data-dir=/x", "--name=a"}, nil},
		{"a longer flag with the same prefix is left alone", []string{"etcd", "--initial-cluster-state=existing", "--initial-cluster=a=u"}, nil, "initial-cluster", "b=v",
			[]string{"etcd", "--initial-cluster-state=existing", "--initial-cluster=b=v"}, nil},
		{"remove", []string{"etcd", "--initial-cluster-state=existing", "--name=a"}, nil, "initial-cluster-state", "",
			[]string{"etcd", "--name=a"}, nil},
		{"append to the command", []string{"etcd", "--name=a"}, nil, "data-dir", "/x",
			[]string{"etcd", "--name=a", "--data-dir=/x"}, nil},
		{"flags in args", []string{"etcd"}, []string{"--name=a", "--data-dir=/d"}, "data-dir", "/x",
			[]string{"etcd"}, []string{"--name=a", "--data-dir=/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := NewEtcdPod(EtcdPodSpec{Name: "a", AdvertiseAddress: "10.0.0.1"})
			pod.Spec.Containers[0].Command, pod.Spec.Containers[0].Args = tt.command, tt.args
			m := &EtcdManifest{Pod: pod, Flags: map[string]string{}}
			m.SetFlag(tt.flag, tt.value)
			c := pod.Spec.Containers[0]
			if !slices.Equal(c.Command, tt.wantCommand) || !slices.Equal(c.Args, tt.wantArgs) {
				t.Errorf("command %q args %q, want %q %q", c.Command, c.Args, tt.wantCommand, tt.wantArgs)
			}
		})
	}
}

func TestMoveDataDir(t *testing.T) {
	pod := NewEtcdPod(EtcdPodSpec{Name: "a", AdvertiseAddress: "10.0.0.1"})
	data, err := Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse("etcd.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if dir, err := m.HostDataDir(); err != nil || dir != DefaultDataDir {
		t.Fatalf("HostDataDir = %q, %v", dir, err)
	}
	if err := m.MoveDataDir("/var/lib/etcd-restore-1"); err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("etcd.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	dv, err := back.DataVolume()
	if err != nil || dv.Volume != DataVolumeName || dv.HostPath != "/var/lib/etcd-restore-1" || dv.MountPath != "/var/lib/etcd-restore-1" || back.Flags["data-dir"] != "/var/lib/etcd-restore-1" {
		t.Errorf("after the move: %+v, %v, --data-dir %s", dv, err, back.Flags["data-dir"])
	}
}
