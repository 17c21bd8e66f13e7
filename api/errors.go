package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/hookline/hookline/schemas"
)

// Error codes of the error body.
const (
	codeBadJSON              = "bad_json"
	codeInvalid              = "invalid"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeForbiddenOrigin      = "forbidden_origin"       // the tokenless API: a page of another site
	codeMisdirected          = "misdirected_host"       // the tokenless API: a Host that is not loopback
	codeUnsupportedMedia     = "unsupported_media_type" // the tokenless API: a body not sent as JSON
	codeNotFound             = "not_found"
	codeConflict             = "conflict"
	codeIdempotencyKeyReused = "idempotency_key_reused"
	codePreconditionFailed   = "precondition_failed"
	codeWebhookDisabled      = "webhook_disabled"
	codeMethodNotAllowed     = "method_not_allowed"
	codeTooLarge             = "too_large"
	codeNotImplemented       = "not_implemented"
	codeUnavailable          = "unavailable"
	codeNotReady             = "not_ready"
	codeInternal             = "internal"
)

// apiError is an answer of 400 or more. It is an error so that helpers can
// return it up to the handler, which writes it.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

type errorBody struct {
	Error *apiError `json:"error"`
}

func invalid(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func badJSON(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeBadJSON, Message: fmt.Sprintf(format, args...)}
}

func notFound(what string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: what + " not found"}
}

// fieldError turns a schemas.FieldError into a 400, prefixing its field
// (for an event inside an array).
func fieldError(err error, prefix string) (*apiError, bool) {
	var fe *schemas.FieldError
	if !errors.As(err, &fe) {
		return nil, false
	}
	return invalid(prefix+fe.Field, "%s", fe.Message), true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// A failed write means the client went away; there is no one to tell.
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, errorBody{Error: e})
}

// readBody reads the whole body, which the server has capped with
// http.MaxBytesReader.
func readBody(r *http.Request) ([]byte, *apiError) {
	var data []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= preallocBody {
		// One buffer of the announced size (the body cannot be longer):
		// io.ReadAll would grow a copy of it about twice over, which was
		// most of what a publish of 500 events allocated.
		data = make([]byte, n)
		_, err = io.ReadFull(r.Body, data)
	} else {
		data, err = io.ReadAll(r.Body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
				Message: fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)}
		}
		return nil, badJSON("the request body could not be read")
	}
	return data, nil
}

// preallocBody is the largest Content-Length readBody allocates at once.
const preallocBody = 16 << 20

// decodeObject decodes one JSON object strictly: unknown fields, trailing
// data and anything but an object are refused. prefix names the object's
// place in the body in field names ("" for the body itself).
func decodeObject(data []byte, v any, prefix string) *apiError {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		if prefix == "" {
			return badJSON("the request body is empty")
		}
		return invalid(strings.TrimSuffix(prefix, "."), "must be a JSON object")
	}
	if data[0] != '{' {
		if prefix == "" {
			return badJSON("the request body must be a JSON object")
		}
		return invalid(strings.TrimSuffix(prefix, "."), "must be a JSON object")
	}
	// segmentio/encoding decodes an event about five times faster than
	// encoding/json, with the same error types.
	// Raw JSON fields (an event's data, changes, context) point into the
	// body instead of being copied: it is read for this request only.
	rest, err := fastjson.Parse(data, v, fastjson.DisallowUnknownFields|fastjson.DontCopyRawMessage)
	if err != nil {
		var parse *time.ParseError
		if _, isEvent := v.(*schemas.Event); isEvent && errors.As(err, &parse) {
			// The only time an input carries; encoding/json does not say
			// which field a time.Time failed in.
			return invalid(prefix+"occurred_at", "must be an RFC 3339 time")
		}
		return decodeError(err, prefix)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return badJSON("unexpected data after the JSON object")
	}
	return nil
}

func decodeError(err error, prefix string) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badJSON("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return badJSON("the JSON ends too early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badJSON("expected %s, found a JSON %s", jsonKind(typ.Type), typ.Value)
		}
		return invalid(prefix+typ.Field, "must be %s, not a JSON %s", jsonKind(typ.Type), typ.Value)
	}
	// encoding/json has no type for an unknown field; its message is stable:
	// `json: unknown field "name"`.
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		return invalid(prefix+name, "is not a known field")
	}
	return badJSON("the body does not have the expected shape")
}

// jsonKind names a Go type as the JSON value it decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a different value"
}
