package upgrade

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
)

func TestFlagChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  map[string]string
		target string
		want   map[string]string
	}{
		{"3.5 flags to 3.6", map[string]string{"experimental-initial-corrupt-check": "true", "name": "a"}, "3.6.16",
			map[string]string{"experimental-initial-corrupt-check": "", "feature-gates": "InitialCorruptCheck=true"}},
		{"3.5 flags beside gates", map[string]string{"experimental-initial-corrupt-check": "true", "feature-gates": "StopGRPCServiceOnDefrag=true"}, "3.7.3",
			map[string]string{"experimental-initial-corrupt-check": "", "feature-gates": "InitialCorruptCheck=true,StopGRPCServiceOnDefrag=true"}},
		{"3.6 flags to 3.7: nothing", map[string]string{"feature-gates": "InitialCorruptCheck=true"}, "3.7.3", map[string]string{}},
		{"3.6 gates down to 3.5", map[string]string{"feature-gates": "InitialCorruptCheck=true"}, "3.5.35",
			map[string]string{"experimental-initial-corrupt-check": "true", "feature-gates": ""}},
		{"renamed flag up", map[string]string{"experimental-watch-progress-notify-interval": "5s"}, "3.6.16",
			map[string]string{"experimental-watch-progress-notify-interval": "", "watch-progress-notify-interval": "5s"}},
		{"renamed flag down", map[string]string{"watch-progress-notify-interval": "5s"}, "3.5.35",
			map[string]string{"experimental-watch-progress-notify-interval": "5s", "watch-progress-notify-interval": ""}},
		{"3.5 to 3.5: nothing", map[string]string{"experimental-initial-corrupt-check": "true"}, "3.5.35", map[string]string{}},
	} {
		if got := FlagChanges(tc.flags, version.MustParseGeneric(tc.target)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
