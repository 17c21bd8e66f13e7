package payload

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of a webhook's field selection.
const (
	MaxFields    = 100 // paths per webhook
	MaxPathBytes = 200 // bytes per path, dots included
)

// PathError names a bad path of a field selection. The API reports it as the
// field fmt.Sprintf("fields[%d]", Index).
type PathError struct {
	Index  int    // position in the list; -1 when the list itself is bad
	Path   string // the offending path
	Reason string
}

func (e *PathError) Error() string {
	if e.Index < 0 {
		return "fields: " + e.Reason
	}
	return fmt.Sprintf("fields[%d]: %q %s", e.Index, e.Path, e.Reason)
}

// ValidateFields checks field paths: 1 to MaxFields paths, each at most
// MaxPathBytes of valid UTF-8 made of dot-separated segments that are neither
// empty nor padded with spaces, and no path listed twice. It returns a
// *PathError naming the first bad path.
//
// A list that names both a path and a path under it ("customer" and
// "customer.email") is valid: the shorter path wins, see Data.
func ValidateFields(fields []string) error {
	if len(fields) == 0 || len(fields) > MaxFields {
		return &PathError{Index: -1, Reason: fmt.Sprintf("must list 1 to %d paths, got %d", MaxFields, len(fields))}
	}
	seen := make(map[string]struct{}, len(fields))
	for i, f := range fields {
		if reason := checkPath(f); reason != "" {
			return &PathError{Index: i, Path: f, Reason: reason}
		}
		if _, dup := seen[f]; dup {
			return &PathError{Index: i, Path: f, Reason: "is listed twice"}
		}
		seen[f] = struct{}{}
	}
	return nil
}

// checkPath returns why a path is bad, or "".
func checkPath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > MaxPathBytes:
		return fmt.Sprintf("is longer than %d bytes", MaxPathBytes)
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	}
	for rest := p; ; {
		seg, tail, more := strings.Cut(rest, ".")
		if seg == "" {
			return "has an empty segment (expected a path like customer.email)"
		}
		if strings.TrimSpace(seg) != seg {
			return fmt.Sprintf("has a segment %q padded with spaces", seg)
		}
		if !more {
			return ""
		}
		rest = tail
	}
}
