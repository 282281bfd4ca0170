package compose

import (
	"testing"

	"github.com/tailor-sec/tailor/internal/dockertest"
)

func TestMain(m *testing.M) { dockertest.Main(m) }
