package jwt

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokencache/tokencache/internal/fakeclock"
)

func fmtAll(v any) string { return fmt.Sprintf("%v %+v %#v %s", v, v, v, v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

type fakeClockT = fakeclock.Clock

func newFakeClock(t time.Time) *fakeClockT { return fakeclock.New(t) }
