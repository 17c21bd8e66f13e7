package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Triggers whose payload differs from "all (selected) fields" (SPEC §3).
const (
	TriggerDelete = "delete"
	TriggerUpdate = "update"
)

// ErrNotObject is returned, wrapped, when shaping is needed and data is not
// a JSON object. The matcher should dead-letter the event for that webhook
// rather than send data as is: sending it unshaped would hand the endpoint
// fields its selection excludes.
var ErrNotObject = errors.New("payload: data is not a JSON object")

// Options are a webhook's shaping settings.
type Options struct {
	Fields           []string // paths into data, e.g. "priority", "customer.email"; empty = all fields
	IncludeAllFields bool     // for updates: false sends only changed fields, the others as null
}

// Data returns the envelope's data for an event.
//
//   - trigger "delete": nil, since a delete sends only type, resource and id.
//   - no options to apply (no Fields, and IncludeAllFields or not an update):
//     data itself, unchanged and without allocating, whatever it holds.
//   - data absent (empty) or JSON null: data itself; there is nothing to shape.
//   - otherwise data must be a JSON object, else the error wraps ErrNotObject.
//     The result is a new object with sorted keys holding the selected fields:
//     a nested path builds nested objects ("customer.email" gives
//     {"customer":{"email":...}}); a path absent from data, or running into a
//     value that is not an object, is left out (never null), and so is a
//     parent left with nothing selected. When a list names both a path and a
//     path under it, the shorter path wins. Keys and values are copied byte
//     for byte, so numbers keep their precision; of a key listed twice in
//     one object the last counts, as with encoding/json.
//   - an update with IncludeAllFields false: every selected field (every
//     top-level field when Fields is empty) is sent only if it changed, else
//     as null. Changes is {"field": {"old":..., "new":...}} whose keys are
//     dotted paths; a path counts as changed when changes names it, a path
//     above it ("customer" for "customer.email") or a path below it
//     ("customer.email" for "customer"). Changes that are absent or not a
//     JSON object name nothing, so every field is null.
//
// Paths split at every dot, so a key that itself contains a dot cannot be
// selected.
func Data(trigger string, data, changes json.RawMessage, opt Options) (json.RawMessage, error) {
	if trigger == TriggerDelete {
		return nil, nil
	}
	changedOnly := trigger == TriggerUpdate && !opt.IncludeAllFields
	if len(opt.Fields) == 0 && !changedOnly {
		return data, nil
	}
	obj := trimSpace(data)
	if len(obj) == 0 || string(obj) == "null" {
		return data, nil
	}
	if obj[0] != '{' || !json.Valid(obj) {
		return nil, fmt.Errorf("%w: got %s", ErrNotObject, kind(obj))
	}
	s := shaper{buf: make([]byte, 0, len(obj))}
	if changedOnly {
		s.changes, s.changedOnly = changedKeys(changes), true
	}
	var sel *node
	if len(opt.Fields) > 0 {
		sel = selection(opt.Fields)
	}
	s.object(obj, sel, "")
	return s.buf, nil
}

// kind names what data holds without quoting it: data may be personal.
func kind(b []byte) string {
	if !json.Valid(b) {
		return "invalid JSON"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// node is a field selection compiled into a tree: whole selects a value
// entirely, children select parts of an object.
type node struct {
	whole    bool
	children map[string]*node
}

func selection(fields []string) *node {
	root := &node{children: make(map[string]*node, len(fields))}
	for _, f := range fields {
		n := root
		for !n.whole {
			seg, rest, more := strings.Cut(f, ".")
			c := n.children[seg]
			if c == nil {
				c = &node{}
				if n.children == nil {
					n.children = make(map[string]*node, 1)
				}
				n.children[seg] = c
			}
			if !more {
				c.whole, c.children = true, nil
				break
			}
			n, f = c, rest
		}
	}
	return root
}

// lookup finds the child selected by a quoted key; for a key that needs no
// decoding, the map lookup does not allocate.
func (n *node) lookup(rawKey []byte) (*node, bool) {
	inner, decode := keyBytes(rawKey)
	if decode {
		c, ok := n.children[decodeKey(rawKey)]
		return c, ok
	}
	c, ok := n.children[string(inner)]
	return c, ok
}

// shaper writes the shaped object into buf.
type shaper struct {
	buf         []byte
	changedOnly bool
	changes     []string // keys of the event's changes, when changedOnly
}

// field is one member of an object that the selection keeps.
type field struct {
	key    string // decoded, for sorting and paths
	rawKey []byte // as written in data, quotes included
	val    []byte
	sel    *node // nil: the whole value
}

// object writes the members of obj (valid JSON) that sel keeps (nil: all,
// whole) and returns how many it wrote. path is obj's dotted path.
func (s *shaper) object(obj []byte, sel *node, path string) int {
	var kept []field
	for m := newMembers(obj); ; {
		rawKey, val, ok := m.next()
		if !ok {
			break
		}
		f := field{rawKey: rawKey, val: val}
		if sel != nil {
			c, found := sel.lookup(rawKey)
			if !found {
				continue
			}
			if !c.whole {
				f.sel = c
			}
		}
		f.key = decodeKey(rawKey)
		kept = append(kept, f)
	}
	slices.SortStableFunc(kept, func(a, b field) int { return strings.Compare(a.key, b.key) })
	s.buf = append(s.buf, '{')
	n := 0
	for i, f := range kept {
		if i+1 < len(kept) && kept[i+1].key == f.key {
			continue // a later duplicate wins
		}
		if s.member(n > 0, f, path) {
			n++
		}
	}
	s.buf = append(s.buf, '}')
	return n
}

// member writes `,"key":value` (the comma when comma) and reports whether it
// wrote anything: a partly selected member that yields nothing is dropped.
func (s *shaper) member(comma bool, f field, path string) bool {
	mark := len(s.buf)
	if comma {
		s.buf = append(s.buf, ',')
	}
	s.buf = append(s.buf, f.rawKey...)
	s.buf = append(s.buf, ':')
	var p string
	if s.changedOnly || f.sel != nil {
		p = join(path, f.key)
	}
	switch {
	case f.sel != nil:
		if len(f.val) == 0 || f.val[0] != '{' || s.object(f.val, f.sel, p) == 0 {
			s.buf = s.buf[:mark]
			return false
		}
	case s.changedOnly && !changed(s.changes, p):
		s.buf = append(s.buf, "null"...)
	default:
		s.buf = append(s.buf, f.val...)
	}
	return true
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// changedKeys returns the keys of an event's changes; none when changes is
// absent or not a JSON object.
func changedKeys(changes json.RawMessage) []string {
	obj := trimSpace(changes)
	if len(obj) == 0 || obj[0] != '{' || !json.Valid(obj) {
		return nil
	}
	var keys []string
	for m := newMembers(obj); ; {
		rawKey, _, ok := m.next()
		if !ok {
			break
		}
		keys = append(keys, decodeKey(rawKey))
	}
	return keys
}

// changed reports whether changes names p, a path above p or a path below p.
// Changes are a handful of keys, so a scan beats building a set.
func changed(changes []string, p string) bool {
	for _, c := range changes {
		if c == p || underPath(p, c) || underPath(c, p) {
			return true
		}
	}
	return false
}

// underPath reports whether p lies under the path parent.
func underPath(p, parent string) bool {
	return len(p) > len(parent) && p[len(parent)] == '.' && p[:len(parent)] == parent
}
