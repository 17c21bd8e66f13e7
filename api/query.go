package api

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Page sizes of every list.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// list is the shape of every list answer (SPEC §5).
type list[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// query reads a request's query string strictly: a parameter the endpoint
// does not know is refused rather than ignored, and so is a repeated one,
// except those listed as multi.
type query struct {
	values url.Values
}

func parseQuery(raw string, known []string, multi ...string) (query, *apiError) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, invalid("", "the query string is malformed")
	}
	isKnown := make(map[string]bool, len(known))
	for _, k := range known {
		isKnown[k] = true
	}
	isMulti := make(map[string]bool, len(multi))
	for _, k := range multi {
		isMulti[k] = true
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names) // the same request always names the same parameter
	for _, name := range names {
		if !isKnown[name] {
			return query{}, invalid(name, "is not a known query parameter")
		}
		if len(values[name]) > 1 && !isMulti[name] {
			return query{}, invalid(name, "is given more than once")
		}
	}
	return query{values: values}, nil
}

func (q query) get(name string) (string, bool) {
	// An empty value is no value: `?cursor=` asks for the first page.
	v, ok := q.values[name]
	if !ok || v[0] == "" {
		return "", false
	}
	return v[0], true
}

func (q query) limit() (int, *apiError) {
	raw, ok := q.get("limit")
	if !ok {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, invalid("limit", "must be an integer from 1 to %d", MaxLimit)
	}
	return n, nil
}

func (q query) bool(name string) (value, given bool, _ *apiError) {
	raw, ok := q.get(name)
	if !ok {
		return false, false, nil
	}
	switch raw {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, invalid(name, "must be true or false")
}

func (q query) time(name string) (time.Time, *apiError) {
	raw, ok := q.get(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, invalid(name, "must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
	}
	return t.UTC(), nil
}

// cursorPrefix marks a cursor the API made: a value that does not carry it
// is refused, instead of read as a position.
const cursorPrefix = "c1:"

// encodeCursor makes a store's position opaque; empty stays empty (the
// last page).
func encodeCursor(pos string) string {
	if pos == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + pos))
}

// decodeCursor reads a cursor of encodeCursor.
func decodeCursor(v string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	pos, ok := strings.CutPrefix(string(b), cursorPrefix)
	return pos, err == nil && ok && pos != ""
}
