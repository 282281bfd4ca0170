package profiles

import (
	"strings"
	"testing"
)

func TestContainerCommand(t *testing.T) {
	c := &Container{Config: map[string]any{"Config": map[string]any{
		"Entrypoint": []any{"/docker-entrypoint.sh"}, "Cmd": []any{"nginx", "-g", "daemon off;"}}}}
	if got := strings.Join(c.Command(), "|"); got != "/docker-entrypoint.sh|nginx|-g|daemon off;" {
		t.Errorf("command %q", got)
	}
	if got := (&Container{}).Command(); got != nil {
		t.Errorf("no configuration: %q", got)
	}
}
