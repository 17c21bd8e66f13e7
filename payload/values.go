package payload

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Single-select modes of a webhook's select_values (SPEC §3, HALO).
const (
	SelectID      = "id"
	SelectDisplay = "display"
)

// SelectValues replaces every single-select value in v, an object of
// exactly the keys "id" and "display", by its id or its display text, as
// mode says, at any depth. Other values, and numbers' digits, are kept;
// keys come out sorted. mode "" or a v that is not JSON returns v as is.
func SelectValues(v json.RawMessage, mode string) json.RawMessage {
	if mode != SelectID && mode != SelectDisplay || len(bytes.TrimSpace(v)) == 0 || !bytes.Contains(v, []byte(`"display"`)) {
		return v
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return v
	}
	out, err := marshalNoEscape(selectIn(x, mode))
	if err != nil {
		return v
	}
	return out
}

func selectIn(x any, mode string) any {
	switch t := x.(type) {
	case map[string]any:
		if len(t) == 2 {
			id, hasID := t["id"]
			display, hasDisplay := t["display"]
			if hasID && hasDisplay {
				if mode == SelectID {
					return id
				}
				return display
			}
		}
		for k, v := range t {
			t[k] = selectIn(v, mode)
		}
	case []any:
		for i, v := range t {
			t[i] = selectIn(v, mode)
		}
	}
	return x
}

func marshalNoEscape(x any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Changes returns the event's changes that a webhook with this field
// selection may see: all of them without a selection, else those whose
// path is selected, or lies above or below a selected path. nil when none
// is left or changes is not an object.
func Changes(changes json.RawMessage, fields []string) json.RawMessage {
	obj := trimSpace(changes)
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	if len(fields) == 0 {
		return changes
	}
	var all map[string]json.RawMessage
	if json.Unmarshal(obj, &all) != nil {
		return nil
	}
	kept := map[string]json.RawMessage{}
	for k, v := range all {
		for _, f := range fields {
			if k == f || strings.HasPrefix(k, f+".") || strings.HasPrefix(f, k+".") {
				kept[k] = v
				break
			}
		}
	}
	if len(kept) == 0 {
		return nil
	}
	out, err := marshalNoEscape(kept)
	if err != nil {
		return nil
	}
	return out
}
