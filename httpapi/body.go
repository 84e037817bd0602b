package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fasthttp"
)

// Reading request bodies. Every problem answers a 4xx with the API's error
// shape before anything reaches the service.

const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// hasMediaType reports whether a Content-Type names want (case-insensitive,
// parameters such as charset ignored).
func hasMediaType(contentType []byte, want string) bool {
	if i := bytes.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(contentType), []byte(want))
}

// checkMediaType answers 415 unless the request's Content-Type is want.
func checkMediaType(ctx *fasthttp.RequestCtx, want string) bool {
	if hasMediaType(ctx.Request.Header.ContentType(), want) {
		return true
	}
	writeError(ctx, fasthttp.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be "+want)
	return false
}

// readForm parses an application/x-www-form-urlencoded body into pooled
// Args the caller must release. It answers 415 for another Content-Type.
func readForm(ctx *fasthttp.RequestCtx) (*fasthttp.Args, bool) {
	if !checkMediaType(ctx, mediaForm) {
		return nil, false
	}
	a := fasthttp.AcquireArgs()
	a.ParseBytes(ctx.Request.Body())
	return a, true
}

// decodeJSON decodes the request body, a JSON object, into v. It answers
// 415 for another Content-Type and 400 for an empty body, anything but an
// object, malformed JSON, an unknown field, a member name that is not lower
// case or that appears twice in an object (in any case), invalid UTF-8, a
// value of the wrong type, or data after the object.
func decodeJSON(ctx *fasthttp.RequestCtx, v any) bool {
	if !checkMediaType(ctx, mediaJSON) {
		return false
	}
	body := bytes.TrimLeft(ctx.Request.Body(), " \t\r\n")
	if len(body) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the request body must be a JSON object")
		return false
	}
	if body[0] != '{' {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the request body must be a JSON object")
		return false
	}
	if err := checkJSONBody(body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, jsonProblem(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "the request body must hold one JSON object and nothing after it")
		return false
	}
	return true
}

// jsonProblem describes a decoding error for the caller, without Go type
// names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("a JSON %s is not allowed here", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON object is truncated"
	}
	// An unknown field ("json: unknown field \"x\"") and the rest.
	return "invalid JSON body: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a value of another type"
}

// requestContext bounds the service calls of one request by
// Config.RequestTimeout. It derives from the server's context, never from
// the *fasthttp.RequestCtx: context.WithTimeout on a RequestCtx starts a
// goroutine that reads the RequestCtx after the handler has returned and
// fasthttp has recycled it (a data race the race detector finds at
// shutdown).
func (s *Server) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.base, s.cfg.RequestTimeout)
}
