package deploy

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
