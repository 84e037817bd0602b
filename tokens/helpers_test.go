package tokens

import (
	"bytes"
	"io"
)

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) bytes() []byte               { return bytes.Clone(w.b) }
func (w *bytesBuffer) reader() io.Reader           { return bytes.NewReader(w.b) }
