package staticpod

import (
	"fmt"
	"path/filepath"
	"strings"
)

// DataVolumeName is the hostPath volume kubeadm mounts the data directory
// from.
const DataVolumeName = "etcd-data"

// DataVolume is where the etcd data lives on the host and in the container.
type DataVolume struct {
	// Volume is the name of the hostPath volume.
	Volume string
	// HostPath is the directory on the node; MountPath the directory in the
	// container that --data-dir is in.
	HostPath  string
	MountPath string
}

// DataVolume finds the hostPath volume that holds --data-dir: the one
// mounted at it or above it, else the one named etcd-data.
func (m *EtcdManifest) DataVolume() (*DataVolume, error) {
	dataDir := m.Flags["data-dir"]
	if dataDir == "" {
		return nil, fmt.Errorf("%s: the etcd command has no --data-dir", m.Path)
	}
	c := m.Pod.Spec.Containers[m.Container]
	hostPaths := map[string]string{}
	for _, v := range m.Pod.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	var best *DataVolume
	for _, vm := range c.VolumeMounts {
		host, ok := hostPaths[vm.Name]
		if !ok {
			continue
		}
		mp := filepath.Clean(vm.MountPath)
		if dataDir == mp || strings.HasPrefix(dataDir, mp+"/") {
			if best == nil || len(mp) > len(best.MountPath) {
				best = &DataVolume{Volume: vm.Name, HostPath: host, MountPath: mp}
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%s: no hostPath volume is mounted at --data-dir %s, so the data does not live on the node", m.Path, dataDir)
	}
	return best, nil
}

// HostDataDir is --data-dir as a path on the node.
func (m *EtcdManifest) HostDataDir() (string, error) {
	dv, err := m.DataVolume()
	if err != nil {
		return "", err
	}
	return filepath.Join(dv.HostPath, strings.TrimPrefix(m.Flags["data-dir"], dv.MountPath)), nil
}

// SetFlag sets --name=value on the etcd command line, replacing the flag
// where it is ("--name=v" or "--name v") or appending it. An empty value
// removes the flag.
func (m *EtcdManifest) SetFlag(name, value string) {
	c := &m.Pod.Spec.Containers[m.Container]
	set := func(args []string) ([]string, bool) {
		var out []string
		found := false
		for i := 0; i < len(args); i++ {
			a := args[i]
			flag := strings.TrimLeft(a, "-")
			if !strings.HasPrefix(a, "-") || (flag != name && !strings.HasPrefix(flag, name+"=")) {
				out = append(out, a)
				continue
			}
			if flag == name && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++ // "--name value": drop the value too
			}
			if !found && value != "" {
				out = append(out, "--"+name+"="+value)
			}
			found = true
		}
		return out, found
	}
	var found bool
	if c.Command, found = set(c.Command); !found {
		if c.Args, found = set(c.Args); !found && value != "" {
			// Append where the other flags are: args when the command is
			// only the binary.
			if len(c.Args) > 0 {
				c.Args = append(c.Args, "--"+name+"="+value)
			} else {
				c.Command = append(c.Command, "--"+name+"="+value)
			}
		}
	}
	if value == "" {
		delete(m.Flags, name)
	} else {
		m.Flags[name] = value
	}
}

// MoveDataDir points the manifest at a new data directory on the host: the
// data volume's hostPath, its mount path in the container and --data-dir
// all become hostDir, as kubeadm keeps them equal.
func (m *EtcdManifest) MoveDataDir(hostDir string) error {
	dv, err := m.DataVolume()
	if err != nil {
		return err
	}
	for i := range m.Pod.Spec.Volumes {
		if v := &m.Pod.Spec.Volumes[i]; v.Name == dv.Volume {
			v.HostPath.Path = hostDir
		}
	}
	c := &m.Pod.Spec.Containers[m.Container]
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == dv.Volume {
			c.VolumeMounts[i].MountPath = hostDir
		}
	}
	m.SetFlag("data-dir", hostDir)
	return nil
}

// Marshal renders the edited pod as manifest YAML.
func (m *EtcdManifest) Marshal() ([]byte, error) {
	return Marshal(m.Pod)
}
